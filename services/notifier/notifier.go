// Package notifier tells the people on call. It turns incident events into
// SMS, calls and email, one message per person so that nobody's address is
// shown to the others, paced so that a storm never becomes a flood,
// threaded per incident, escalated rung by rung by its severity's policy
// until someone acknowledges (see decide), and recorded per delivery so
// that an event delivered again never sends again. Channels sit behind
// one interface; when one fails for good or for too long, the next in
// notify.fallback carries the message and says so.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// Deps are what a notifier needs from outside, as every service.
type Deps = platform.Deps

// Notifier sends incident messages.
type Notifier struct {
	cfg   *config.Config
	bus   *bus.Bus
	log   *slog.Logger
	now   func() time.Time
	chans []Channel
	pace  pacing // with the policies, by the channels there are
	ln    net.Listener
	given []Channel // WithChannels
	m     *metrics.Metrics
	// ackWait bounds the handling of one event: after a crash, that long
	// passes before the event is handled again.
	ackWait time.Duration
	health  health // of each channel's provider, for the self-watcher
}

// Option adjusts a notifier.
type Option func(*Notifier)

// WithAckWait sets how long one event may take before JetStream gives it
// to another notifier (default 30s), which is also how long a crash can
// hold up a page.
func WithAckWait(d time.Duration) Option { return func(n *Notifier) { n.ackWait = d } }

// WithChannels replace, by name, the channels the config's providers
// describe, or add to them.
func WithChannels(cs ...Channel) Option {
	return func(n *Notifier) { n.given = append(n.given, cs...) }
}

// WithListener serves acknowledgements on ln instead of notify.listen.
func WithListener(ln net.Listener) Option { return func(n *Notifier) { n.ln = ln } }

// New returns a notifier for the staff in cfg.
func New(cfg *config.Config, deps Deps, opts ...Option) (*Notifier, error) {
	deps = deps.WithDefaults()
	deps.Metrics.Expect("notifier", "notifier", "notifier-failover", "notifier-self")
	nc := cfg.Notify
	n := &Notifier{m: deps.Metrics,
		cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", "notifier"), now: deps.Now,
		ackWait: 30 * time.Second,
		pace:    pacing{GroupWait: nc.GroupWait.D(), GroupWindow: nc.GroupWindow.D(), UpdateEvery: nc.UpdateEvery.D(), RepeatEvery: nc.RepeatEvery.D()},
	}
	for _, o := range opts {
		o(n)
	}
	callback := ""
	if nc.PublicURL != "" {
		callback = strings.TrimRight(nc.PublicURL, "/") + pathTwilioStatus
	}
	chans, err := channels(cfg, n.given, callback)
	if err != nil {
		return nil, err
	}
	n.chans = chans
	n.pace.Policies, n.pace.Staff = n.policies(cfg), policy.Staff(cfg)
	return n, nil
}

// policies are the config's escalation policies for the channels the
// notifier has. Without the voice channel (no notify.public_url for the
// keypress to reach) a rung's call goes by SMS: a second text beats a
// rung that reaches nobody.
func (n *Notifier) policies(cfg *config.Config) policy.Policies {
	_, voice := n.channel(chanVoice)
	return policies(cfg, voice)
}

// policies are the config's escalation policies, with the calls made by
// SMS when there is no voice channel.
func policies(cfg *config.Config, voice bool) policy.Policies {
	ps := policy.FromConfig(cfg)
	if voice {
		return ps
	}
	for sev, pol := range ps {
		out := make(policy.Policy, len(pol))
		for i, r := range pol {
			var by []string
			for _, ch := range r.By {
				if ch == policy.Voice {
					ch = policy.SMS
				}
				if !slices.Contains(by, ch) {
					by = append(by, ch)
				}
			}
			r.By = by
			out[i] = r
		}
		ps[sev] = out
	}
	return ps
}

// Run sends messages, and serves acknowledgements, until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	kv, err := n.bus.KV(ctx, events.BucketDeliveries)
	if err != nil {
		return err
	}
	ckv, err := n.openCanary(ctx)
	if err != nil {
		return err
	}
	// Each part runs until ctx ends or one of them stops; Run returns once
	// every part has finished what it held, so that nothing is still
	// sending, or logging, after it.
	errs := make(chan error, 4)
	ctx, cancel := context.WithCancel(ctx)
	var parts sync.WaitGroup
	defer func() { cancel(); parts.Wait() }()
	start := func(part func() error) { parts.Go(func() { errs <- part() }) }
	start(func() error { return n.consumeActions(ctx, kv) })
	if err := n.watchSelf(ctx, kv, start); err != nil {
		return err
	}
	if n.cfg.Notify.PublicURL != "" {
		start(func() error { return n.serve(ctx, kv) })
	}
	start(func() error {
		return n.bus.Consume(ctx, bus.Consumer{
			Stream:  events.StreamEvents,
			Name:    "notifier",
			Filter:  n.eventFilters(),
			Workers: 8,
			// One incident's events in order, by one worker.
			Key: events.SubjectID,
			// One incident's messages in order, by one instance.
			Exclusive: true,
			// Work done before a crash is recorded; what is left goes on
			// after this long.
			AckWait:    n.ackWait,
			BackoffMin: time.Second, BackoffMax: 30 * time.Second,
			Since:   time.Hour, // a notifier deployed afresh tells of recent incidents only
			Metrics: n.m, Log: n.log,
		}, func(ctx context.Context, ev events.Event) error {
			if c, ok := ev.Data.(*events.CanaryJudged); ok {
				return n.decideCanary(ctx, ckv, ev, c)
			}
			return n.handle(ctx, kv, ev)
		})
	})
	return <-errs
}

// handle merges an event into its incident's state, finishes a message
// left half sent, and sends what the event calls for now, or asks to see
// the event again when something is due later.
func (n *Notifier) handle(ctx context.Context, kv jetstream.KeyValue, ev events.Event) error {
	if ev.Type == events.TypeIncidentNotified {
		return nil // our own word to the escalator
	}
	id := incident.Of(ev)
	if id == "" {
		return bus.Permanent(fmt.Errorf("a %s event on an incident subject", ev.Type))
	}
	log := n.log.With("incident", id)
	st, rev, err := loadState(ctx, kv, id)
	if err != nil {
		return err
	}
	st.merge(ev)
	if err := n.noteStorm(ctx, kv, &st); err != nil {
		return err
	}
	later := time.Duration(0)
	// A message half sent, then those this event calls for: worse news,
	// and the rungs of the policy due, one message each.
	settled := false
	for range maxMessages {
		s := st.Sending
		if s == nil {
			var next *sending
			pace := n.pace
			pace.RepeatEvery = n.cfg.Notify.Route(st.Severity()).RepeatEvery.D()
			next, later = decide(&st, ev, n.now(), pace)
			if next == nil {
				settled = true
				break
			}
			if err := claimActions(ctx, kv, &st, next); err != nil {
				return err
			}
			s, st.Sending = next, next
		}
		if rev, err = saveState(ctx, kv, st, rev); err != nil {
			return err // claimed by nobody: the redelivery decides again
		}
		if err := n.send(ctx, kv, &st, *s, log); err != nil {
			if _, err := saveState(ctx, kv, st, rev); err != nil {
				log.Warn("could not record who was told", "err", err)
			}
			return err // the claim stays: the redelivery finishes it
		}
		st.sent(*s)
	}
	if !settled {
		later = time.Second // more is due: look again soon
	}
	if later > 0 && !n.holds(&st, ev, later) {
		later = 0 // another update wakes the incident by then
	}
	if _, err := saveState(ctx, kv, st, rev); err != nil {
		return err
	}
	if later > 0 {
		return bus.Later(later)
	}
	return nil
}

// maxMessages bounds the messages one event sends at once: more rungs due
// than this go when the event is looked at again, a moment later.
const maxMessages = 16

// wakerGrace is how late the held update may be before another takes its
// place, in case it was lost; two wakers cost only a look that finds
// nothing to send.
const wakerGrace = time.Minute

// holds says whether ev is held back for later, noting it as the
// incident's waker when it is an update: one update per incident waits
// for the next digest, the rest are done once merged.
func (n *Notifier) holds(st *incidentState, ev events.Event, later time.Duration) bool {
	if _, ok := ev.Data.(*events.IncidentUpdated); !ok {
		return true // the opening event is the reminders' timer, one per incident
	}
	now := n.now()
	wake := now.Add(later)
	if st.Waker != "" && st.Waker != ev.ID && !wake.Before(st.WakeAt) && now.Before(st.WakeAt.Add(wakerGrace)) {
		return false
	}
	st.Waker, st.WakeAt = ev.ID, wake
	return true
}

// send delivers one message to everyone it is for, each by their channels.
// Deliveries already recorded are skipped, so a retry reaches only those
// left; a channel failing for good or for too long falls back to another.
// Once a page has reached the people on call, the escalator hears so:
// nothing goes to the datacentre or the public before.
func (n *Notifier) send(ctx context.Context, kv jetstream.KeyValue, st *incidentState, s sending, log *slog.Logger) error {
	msg := compose(n.cfg, st, s, s.At)
	if err := n.withActions(ctx, kv, st, s, &msg); err != nil {
		return err
	}
	if (s.Kind == kindOpened || s.Kind == kindWorse) && msg.SMS != "" && !st.Warning && !st.OpenedFlapping {
		// One incident per datacentre, one SMS per person between them:
		// the page that goes says how far the storm reaches.
		if storm := n.stormSummary(ctx, kv, st); storm != "" {
			msg.SMS = storm + " " + msg.SMS
			msg.body.Lead = storm + " " + msg.body.Lead
		}
	}
	var retry []error
	onCall, reached := 0, 0
	for _, r := range n.audience(st, s) {
		told := false
		for _, ch := range r.Channels {
			ok, err := n.deliver(ctx, kv, st, msg, r, ch, log)
			if err != nil {
				retry = append(retry, err)
			}
			told = told || ok && ch == n.primary(r)
		}
		if r.OnCall {
			onCall++
			if told {
				reached++
			}
		}
	}
	if (s.Kind == kindOpened || s.Kind == kindWorse) && (reached > 0 || onCall == 0) {
		if err := n.notified(ctx, st, s, msg, reached); err != nil {
			retry = append(retry, err)
		}
	}
	if len(retry) > 0 {
		log.Warn("message not delivered to everyone yet; will retry", "step", msg.step(), "left", len(retry), "err", retry[0])
		return errors.Join(retry...)
	}
	log.Info("message delivered", "step", msg.step(), "severity", s.Severity)
	return nil
}

// notified tells the escalator that the people on call were sent a page.
// Its id follows from the message, so saying it again stores it once.
func (n *Notifier) notified(ctx context.Context, st *incidentState, s sending, msg message, reached int) error {
	sev := s.Severity
	if sev == "" {
		sev = st.Severity() // a page claimed before severities existed
	}
	ev := events.New(st.Incident+"/notified/"+msg.step(), "notifier", n.now(), &events.IncidentNotified{
		Incident: st.Incident, Step: msg.step(), At: n.now(), Severity: sev, DownBoxes: s.Down, Reached: reached,
	})
	return n.bus.Publish(ctx, ev)
}

// audience is who a message is for, and by which channels.
func (n *Notifier) audience(st *incidentState, s sending) []recipient {
	sev := st.Severity()
	if s.Severity != "" {
		sev = s.Severity
	}
	rs := n.recipients(st.Boxes, s.At, sev)
	switch s.Kind {
	case kindOpened:
		if st.OpenedFlapping {
			// Down and up again and again, and paged about the first
			// time: staff read of it, nobody is woken for it again.
			for i := range rs {
				rs[i].Channels = n.updateChannels(rs[i])
			}
		}
		rs = n.withSteps(rs, s.Steps)
		n.tell(st, rs)
		return rs
	case kindEscalation:
		rs := n.withSteps(nil, s.Steps)
		n.tell(st, rs)
		return rs
	case kindAcked:
		return n.ackAudience(st, s)
	case kindWorse:
		// Whoever acknowledged the milder state took the incident on: they
		// hear of the worse one the way the person on call does.
		if a := st.Acked; a != nil {
			if p, ok := n.cfg.StaffNamed(a.By); ok {
				if ch := n.reachable(p, n.cfg.Notify.Route(sev).OnCall); len(ch) > 0 {
					rs = slices.DeleteFunc(rs, func(r recipient) bool { return r.Staff.Name == a.By })
					rs = append(rs, recipient{Staff: p, OnCall: true, Channels: ch})
				}
			}
		}
		rs = n.withSteps(rs, s.Steps)
		n.tell(st, rs)
		return rs
	case kindDigest:
		for i := range rs {
			rs[i].Channels = n.updateChannels(rs[i])
		}
		return rs
	case kindReminder:
		if st.Warning {
			// A warning is everyone's to fix: a daily email to all routed.
			for i := range rs {
				rs[i].Channels = n.updateChannels(rs[i])
			}
			return rs
		}
		return slices.DeleteFunc(rs, func(r recipient) bool { return !r.OnCall })
	case kindResolved:
		// Whoever was told of the outage hears it is over, the same way;
		// if nobody was, those it would have gone to hear by email.
		if len(st.Told) == 0 {
			for i := range rs {
				rs[i].Channels = n.updateChannels(rs[i])
			}
			return rs
		}
		var out []recipient
		for _, p := range n.cfg.Staff {
			k := staffKey(p)
			if told, ok := st.Told[k]; ok {
				if !st.Rang[k] {
					told = slices.DeleteFunc(slices.Clone(told), n.wakes)
				}
				if len(told) > 0 {
					out = append(out, recipient{Staff: p, Channels: told})
				}
			}
		}
		return out
	}
	return nil
}

// tell notes who was paged, and how, so that the resolution reaches them
// the same way.
func (n *Notifier) tell(st *incidentState, rs []recipient) {
	if st.Told == nil {
		st.Told = map[string][]string{}
	}
	for _, r := range rs {
		k := staffKey(r.Staff)
		for _, ch := range r.Channels {
			if ch == chanVoice {
				ch = chanSMS // a call rang them: the resolution is texted
			}
			if !slices.Contains(st.Told[k], ch) {
				st.Told[k] = append(st.Told[k], ch)
			}
		}
	}
}

// withSteps adds to rs whom the rungs of steps page, by the rungs'
// channels they can be reached by: a person already in rs gets the
// channels they lack.
func (n *Notifier) withSteps(rs []recipient, steps []policy.Step) []recipient {
	for _, step := range steps {
		for _, pg := range step.Pages {
			p, ok := n.cfg.StaffNamed(pg.Person)
			if !ok {
				continue
			}
			chs := n.reachable(p, pg.By)
			if len(chs) == 0 {
				continue
			}
			i := slices.IndexFunc(rs, func(r recipient) bool { return r.Staff.Name == p.Name })
			if i < 0 {
				rs = append(rs, recipient{Staff: p, OnCall: true})
				i = len(rs) - 1
			}
			for _, ch := range chs {
				if !slices.Contains(rs[i].Channels, ch) {
					rs[i].Channels = append(rs[i].Channels, ch)
				}
			}
		}
	}
	return rs
}

// ackAudience is who hears that someone acknowledged: everyone the
// incident's messages reached, or its rungs paged, but the acker; by SMS
// whom a page rang, by email the others (by whichever they have, when
// they lack that one).
func (n *Notifier) ackAudience(st *incidentState, s sending) []recipient {
	paged, rung := map[string]bool{}, map[string]bool{}
	for _, step := range st.Policy.Fired {
		for _, pg := range step.Pages {
			paged[pg.Person] = true
			if slices.Contains(pg.By, policy.SMS) || slices.Contains(pg.By, policy.Voice) {
				rung[pg.Person] = true
			}
		}
	}
	var out []recipient
	for _, p := range n.cfg.Staff {
		k := staffKey(p)
		_, told := st.Told[k]
		if s.Ack == nil || p.Name == s.Ack.By || !told && !paged[p.Name] {
			continue
		}
		want := []string{chanEmail, chanSMS}
		if rung[p.Name] || st.Rang[k] {
			want = []string{chanSMS, chanEmail}
		}
		if ch := n.reachable(p, want); len(ch) > 0 {
			out = append(out, recipient{Staff: p, Channels: ch[:1]})
		}
	}
	return out
}
