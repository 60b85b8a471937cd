// Package escalator keeps durable deadlines per incident: after the
// datacentre timeout it emails the datacentre of the incident's boxes
// (a ticket, threaded follow-ups, a resolution); after the extended-outage
// timeout it posts to X and Facebook and raises the banner on the hosting
// pages; it passes staff updates on and cancels pending steps when an
// incident is resolved, or acknowledged if the config says so.
//
// Its deadlines are held by JetStream, never by a timer that lives only in
// memory: the incident's opening event is handed back with a delay until
// the next step falls due, so that neither a restart of the escalator nor
// one of the whole process loses or repeats a step.
package escalator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Mailer sends one email; an error marked bus.Permanent cannot be helped
// by trying again.
type Mailer interface {
	Send(ctx context.Context, m smtpmail.Message) error
}

// XPoster posts to X, as a reply when replyTo is set, and returns the
// post's id.
type XPoster interface {
	Post(ctx context.Context, text, replyTo string) (string, error)
}

// PagePoster posts to a Facebook page's feed, and comments on a post.
type PagePoster interface {
	Post(ctx context.Context, message, link string) (string, error)
	Comment(ctx context.Context, postID, message string) (string, error)
}

// Deps are what an escalator needs from outside, as every service.
type Deps = platform.Deps

// Escalator takes incidents further when they last.
type Escalator struct {
	cfg     *config.Config
	bus     *bus.Bus
	log     *slog.Logger
	now     func() time.Time
	mailer  Mailer
	x       XPoster
	fb      PagePoster
	domain  string
	ackWait time.Duration
	m       *metrics.Metrics
}

// Option adjusts an escalator.
type Option func(*Escalator)

// WithAckWait sets how long one event may take before JetStream gives it to
// another escalator (default 30s); after a crash, that long passes before
// the event is handled again.
func WithAckWait(d time.Duration) Option { return func(e *Escalator) { e.ackWait = d } }

// New returns an escalator for cfg.
func New(cfg *config.Config, deps Deps, opts ...Option) (*Escalator, error) {
	deps = deps.WithDefaults()
	e := &Escalator{
		cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", "escalator"), now: deps.Now,
		domain: "tocsin.invalid", ackWait: 30 * time.Second, m: deps.Metrics,
	}
	for _, o := range opts {
		o(e)
	}
	if s := cfg.Providers.SMTP; s != nil {
		if a, err := mail.ParseAddress(s.From); err == nil {
			e.domain = a.Address[strings.LastIndexByte(a.Address, '@')+1:]
		}
		if e.mailer == nil {
			m, err := smtpmail.FromConfig(s)
			if err != nil {
				return nil, err
			}
			e.mailer = m
		}
	}
	if err := e.providers(); err != nil {
		return nil, err
	}
	e.m.Expect("escalator", "escalator")
	e.timed()
	return e, nil
}

// Run escalates until ctx ends.
func (e *Escalator) Run(ctx context.Context) error {
	kv, err := e.bus.KV(ctx, events.BucketEscalations)
	if err != nil {
		return err
	}
	banner, err := e.bus.KV(ctx, events.BucketBanner)
	if err != nil {
		return err
	}
	return e.bus.Consume(ctx, bus.Consumer{
		Stream:     events.StreamEvents,
		Name:       "escalator",
		Filter:     []string{events.SubjectIncidents},
		Workers:    4,
		Key:        events.SubjectID,
		Exclusive:  true, // one incident's steps in order, by one instance
		AckWait:    e.ackWait,
		BackoffMin: time.Second, BackoffMax: time.Minute,
		// Deadlines of incidents opened before a fresh deployment count too.
		Since:   7 * 24 * time.Hour,
		Metrics: e.m, Log: e.log,
	}, func(ctx context.Context, ev events.Event) error { return e.handle(ctx, kv, banner, ev) })
}

// handle merges an event into its incident's state, takes the steps that
// are due and passes on what must follow them, then asks, through the
// opening event, to be woken when the next step falls due.
func (e *Escalator) handle(ctx context.Context, kv, banner jetstream.KeyValue, ev events.Event) error {
	if ev.Type == events.TypeIncidentEscalated {
		return nil // our own
	}
	id := incident.Of(ev)
	if id == "" {
		return bus.Permanent(fmt.Errorf("a %s event on an incident subject", ev.Type))
	}
	log := e.log.With("incident", id)
	var st state
	rev, err := bus.GetJSON(ctx, kv, id+".state", &st)
	if err != nil {
		return err
	}
	st.merge(ev, e.cfg)
	now := e.now()
	dcAfter, socialAfter := e.cfg.EscalationFor(st.Boxes)
	steps, next := due(&st, dcAfter, socialAfter, now)
	var errs []error
	for _, step := range steps {
		if err := e.take(ctx, kv, banner, &st, step, now, log); err != nil {
			errs = append(errs, err)
			continue
		}
		if step == config.StepDatacentre {
			st.DatacentreDone = now
		} else {
			st.SocialDone = now
		}
	}
	if err := e.followUps(ctx, kv, banner, &st, now, log); err != nil {
		errs = append(errs, err)
	}
	// One event is held back until the next step falls due: the opening
	// event always, or any other when no event is held for that soon (the
	// public clock starts when a box goes down, which an update brings).
	// Two held at once cost a look that finds nothing to do.
	hold := !next.IsZero() && len(errs) == 0 &&
		(ev.Type == events.TypeIncidentOpened || !now.Before(st.WakeAt) || next.Before(st.WakeAt))
	if hold {
		st.WakeAt = next
	}
	if _, err := bus.PutJSON(ctx, kv, id+".state", st, rev); err != nil {
		return err // what was done is recorded step by step; the retry skips it
	}
	if len(errs) > 0 {
		return retryLater(errors.Join(errs...))
	}
	if hold {
		return bus.Later(next.Sub(now))
	}
	return nil
}

// retryLater waits as long as a provider asked to be left alone, or backs
// off as for any failure. Permanent refusals never get here: they are
// logged for someone to act on, and the rest of the step goes on.
func retryLater(err error) error {
	if d := bus.RetryAfter(err); d > 0 {
		return bus.Later(d) // a provider's rate limit, bounded by bus.MaxRetryAfter
	}
	return err
}

// take carries out one escalation step and announces it.
func (e *Escalator) take(ctx context.Context, kv, banner jetstream.KeyValue, st *state, step string, now time.Time, log *slog.Logger) error {
	var to []string
	switch step {
	case config.StepDatacentre:
		dcs := datacentresOf(e.cfg, st.Boxes)
		if len(dcs) == 0 || e.mailer == nil {
			log.Warn("datacentre step due, but no datacentre of the incident has an email address (or no SMTP provider)")
		}
		for _, dc := range dcs {
			if _, err := e.once(ctx, kv, fmt.Sprintf("%s.dc.%s.opened", st.Incident, dc), func() (string, error) {
				return "", e.mailer.Send(ctx, ticketEmail(e.cfg, st, dc, "opened", e.domain, nil, now))
			}); err != nil {
				return e.failed(log, "datacentre email", err)
			}
			to = append(to, dc)
		}
		log.Warn("datacentre emailed to open a ticket", "datacentres", dcs)
	case config.StepSocial:
		// Each network on its own: one that is down or rate-limited
		// holds up neither the other nor the banner.
		text := outageText(e.cfg, st)
		var errs []error
		if e.x != nil {
			if _, err := e.once(ctx, kv, st.Incident+".x.opened", func() (string, error) { return e.postX(ctx, text, "") }); err != nil {
				errs = append(errs, e.failed(log, "post to X", err))
			} else {
				to = append(to, "x")
			}
		}
		if e.fb != nil {
			if _, err := e.once(ctx, kv, st.Incident+".fb.opened", func() (string, error) { return e.fb.Post(ctx, text, e.cfg.Site.StatusURL) }); err != nil {
				errs = append(errs, e.failed(log, "post to Facebook", err))
			} else {
				to = append(to, "facebook")
			}
		}
		if err := e.raiseBanner(ctx, banner, st, now); err != nil {
			errs = append(errs, err)
		} else {
			to = append(to, "banner")
		}
		if err := errors.Join(errs...); err != nil {
			return err // the step is taken again; what was done is recorded
		}
		log.Warn("outage made public", "on", to)
	}
	ev := events.New(st.Incident+"/escalated/"+step, "escalator", now, &events.IncidentEscalated{Incident: st.Incident, Step: step, At: now, To: to})
	return e.bus.Publish(ctx, ev)
}

// followUps passes staff notes and the resolution on to wherever the
// incident went: the datacentre's thread, the social posts, the banner.
func (e *Escalator) followUps(ctx context.Context, kv, banner jetstream.KeyValue, st *state, now time.Time, log *slog.Logger) error {
	var errs []error
	if !st.DatacentreDone.IsZero() && e.mailer != nil {
		for _, dc := range datacentresOf(e.cfg, st.Boxes) {
			for i := range st.Notes {
				n := &st.Notes[i]
				step := fmt.Sprintf("note-%d", n.Seq)
				if _, err := e.once(ctx, kv, fmt.Sprintf("%s.dc.%s.%s", st.Incident, dc, step), func() (string, error) {
					return "", e.mailer.Send(ctx, ticketEmail(e.cfg, st, dc, step, e.domain, n, now))
				}); err != nil {
					errs = append(errs, e.failed(log, "datacentre update", err))
				}
			}
			if st.Resolved != nil {
				if _, err := e.once(ctx, kv, fmt.Sprintf("%s.dc.%s.resolved", st.Incident, dc), func() (string, error) {
					return "", e.mailer.Send(ctx, ticketEmail(e.cfg, st, dc, "resolved", e.domain, nil, now))
				}); err != nil {
					errs = append(errs, e.failed(log, "datacentre resolution", err))
				}
			}
		}
	}
	if !st.SocialDone.IsZero() {
		var texts []struct{ key, text string }
		for _, n := range st.Notes {
			texts = append(texts, struct{ key, text string }{fmt.Sprintf("note-%d", n.Seq), noteText(e.cfg, n)})
		}
		if st.Resolved != nil {
			texts = append(texts, struct{ key, text string }{"resolved", resolvedText(e.cfg, st)})
		}
		for _, t := range texts {
			if e.x != nil {
				root, _, err := e.record(ctx, kv, st.Incident+".x.opened")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if _, err := e.once(ctx, kv, st.Incident+".x."+t.key, func() (string, error) { return e.postX(ctx, t.text, root) }); err != nil {
					errs = append(errs, e.failed(log, "reply on X", err))
				}
			}
			if e.fb != nil {
				root, _, err := e.record(ctx, kv, st.Incident+".fb.opened")
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if _, err := e.once(ctx, kv, st.Incident+".fb."+t.key, func() (string, error) {
					if root == "" {
						return e.fb.Post(ctx, t.text, e.cfg.Site.StatusURL)
					}
					return e.fb.Comment(ctx, root, t.text)
				}); err != nil {
					errs = append(errs, e.failed(log, "comment on Facebook", err))
				}
			}
		}
		if st.Resolved != nil {
			if err := e.lowerBanner(ctx, banner, st.Incident); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// failed logs a step that failed and returns what the bus should do: a
// permanent refusal is an error for someone to act on, and not retried.
func (e *Escalator) failed(log *slog.Logger, what string, err error) error {
	if bus.IsPermanent(err) {
		log.Error(what+" refused for good; someone must do it by hand", "err", err)
		return nil
	}
	log.Warn(what+" failed; will retry", "err", err)
	return err
}

// postX posts to X; a duplicate of our own earlier post (sent before a
// crash, never recorded) counts as posted.
func (e *Escalator) postX(ctx context.Context, text, replyTo string) (string, error) {
	id, err := e.x.Post(ctx, text, replyTo)
	if isDuplicate(err) {
		return "", nil
	}
	return id, err
}

// once does an action unless its record says it was done, and records it
// with the id it returned. A crash between the action and the record does
// it again: that window is one key-value write.
func (e *Escalator) once(ctx context.Context, kv jetstream.KeyValue, key string, act func() (string, error)) (string, error) {
	if id, ok, err := e.record(ctx, kv, key); err != nil || ok {
		return id, err
	}
	id, err := act()
	if err != nil {
		return "", err
	}
	for attempt := 1; ; attempt++ {
		_, err := kv.Put(ctx, key, []byte(id))
		if err == nil || attempt == 3 || ctx.Err() != nil {
			if err != nil {
				e.log.Error("done, but its record could not be written", "key", key, "err", err)
			}
			return id, nil
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// record reads what an action recorded: its id and true if it was done,
// false if not. Any error but "not found" is an error, never "not done":
// taken as not done, a failed read would post twice. It is read from the
// bucket's leader: a replica a moment behind would not know of the post
// just made, and the next would go out again, or not as its reply.
func (e *Escalator) record(ctx context.Context, kv jetstream.KeyValue, key string) (string, bool, error) {
	value, _, err := e.bus.LeaderGet(ctx, kv, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("read the record of %s: %w", key, err)
	}
	return string(value), true, nil
}

// raiseBanner puts the banner up for an incident made public.
func (e *Escalator) raiseBanner(ctx context.Context, kv jetstream.KeyValue, st *state, now time.Time) error {
	return e.updateBanner(ctx, kv, func(b *events.Banner) {
		if !slices.Contains(b.Incidents, st.Incident) {
			b.Incidents = append(b.Incidents, st.Incident)
		}
		if !b.On {
			b.Since = now.UTC()
		}
		b.On, b.Message, b.Link = true, bannerText(e.cfg, st.publicDown()), e.cfg.Site.StatusURL
	})
}

// lowerBanner takes an incident off the banner, and the banner down with
// the last one.
func (e *Escalator) lowerBanner(ctx context.Context, kv jetstream.KeyValue, incident string) error {
	return e.updateBanner(ctx, kv, func(b *events.Banner) {
		b.Incidents = slices.DeleteFunc(b.Incidents, func(id string) bool { return id == incident })
		if len(b.Incidents) == 0 {
			b.On, b.Message, b.Since = false, "", time.Time{}
		}
	})
}

// updateBanner changes the banner's record. It is read from its leader:
// on a cluster a replica a moment behind would miss the incident this
// escalator put up a moment ago, find nothing to take down, and leave the
// banner up on the hosting pages for an outage that is over.
func (e *Escalator) updateBanner(ctx context.Context, kv jetstream.KeyValue, change func(*events.Banner)) error {
	for range 10 {
		var b events.Banner
		rev, err := e.bus.GetLeaderJSON(ctx, kv, events.BannerKey, &b)
		if err != nil {
			return err
		}
		before, _ := json.Marshal(b)
		change(&b)
		if after, _ := json.Marshal(b); string(after) == string(before) {
			return nil
		}
		if _, err := bus.PutJSON(ctx, kv, events.BannerKey, b, rev); !bus.IsConflict(err) {
			return err
		}
	}
	return errors.New("the banner kept changing; retrying")
}
