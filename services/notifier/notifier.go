// Package notifier tells the people on call. It turns incident events into
// SMS and email, one message per person so that nobody's address is shown
// to the others, paced so that a storm never becomes a flood, threaded per
// incident, repeated until someone acknowledges, and recorded per delivery
// so that an event delivered again never sends again. Channels sit behind
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
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
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
	pace  pacing
	ln    net.Listener
	given []Channel // WithChannels
	m     *metrics.Metrics
	// ackWait bounds the handling of one event: after a crash, that long
	// passes before the event is handled again.
	ackWait time.Duration
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
	deps.Metrics.Expect("notifier", "notifier", "notifier-failover")
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
	return n, nil
}

// Run sends messages, and serves acknowledgements, until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	kv, err := n.bus.KV(ctx, events.BucketDeliveries)
	if err != nil {
		return err
	}
	errs := make(chan error, 3)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { errs <- n.consumeActions(ctx, kv) }()
	if n.cfg.Notify.PublicURL != "" {
		go func() { errs <- n.serve(ctx, kv) }()
	}
	go func() {
		errs <- n.bus.Consume(ctx, bus.Consumer{
			Stream:  events.StreamEvents,
			Name:    "notifier",
			Filter:  []string{events.SubjectIncidents},
			Workers: 8,
			// One incident's events in order, by one worker.
			Key: func(subject string) string { return strings.Split(subject, ".")[1] },
			// One incident's messages in order, by one instance.
			Exclusive: true,
			// Work done before a crash is recorded; what is left goes on
			// after this long.
			AckWait:    n.ackWait,
			BackoffMin: time.Second, BackoffMax: 30 * time.Second,
			Since:   time.Hour, // a notifier deployed afresh tells of recent incidents only
			Metrics: n.m, Log: n.log,
		}, func(ctx context.Context, ev events.Event) error { return n.handle(ctx, kv, ev) })
	}()
	err = <-errs
	cancel()
	return err
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
	later := time.Duration(0)
	for range 3 { // a message half sent, then the one this event calls for
		s := st.Sending
		if s == nil {
			var next *sending
			pace := n.pace
			pace.RepeatEvery = n.cfg.Notify.Route(st.Severity()).RepeatEvery.D()
			next, later = decide(&st, ev, n.now(), pace)
			if next == nil {
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
		n.tell(st, rs)
		return rs
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
			if !slices.Contains(st.Told[k], ch) {
				st.Told[k] = append(st.Told[k], ch)
			}
		}
	}
}
