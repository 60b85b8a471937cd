// Package failover gets traffic away from a dead server so that its box
// keeps serving: when the verifier confirms a server down, failover takes
// it out of its load balancer's pool (HAProxy's runtime API, or a signed
// webhook for anything else), and when the server is up again, and has
// stayed up for the box's recover_after, it puts it back.
//
// It acts on confirmed changes only: server.<id>.changed events to down
// and to up. A suspect server, a false alarm, a maintenance window never
// move anything. It never takes out the last server of a box that is up
// and in the pool: a box whose every server is failing keeps them all,
// and the action is held until another comes back. It puts back only what
// it took out: a server an operator had put in maintenance stays there.
//
// Every action is a server.<id>.action event with its outcome. Each
// server's record in the tocsin-failover bucket holds the newest change
// handled and where the server stands at each target, so that a
// redelivered or stale event changes nothing, and an action cut short by a
// restart is finished, not begun again.
package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source is what failover's events say produced them.
const Source = "failover"

// Deps are what failover needs from outside, as every service.
type Deps = platform.Deps

// Service takes failed servers out of their pools and puts them back.
type Service struct {
	cfg     *config.Config
	bus     *bus.Bus
	log     *slog.Logger
	now     func() time.Time
	targets map[string][]Target // by box
	m       *metrics.Metrics

	ackWait                time.Duration
	backoffMin, backoffMax time.Duration
	recheck                time.Duration
}

// Option adjusts the service.
type Option func(*Service)

// WithAckWait sets how long one event may take before JetStream gives it
// to another instance (default 60s: a webhook and two HAProxies may each
// take their timeout).
func WithAckWait(d time.Duration) Option { return func(s *Service) { s.ackWait = d } }

// WithBackoff sets the delays before a failed action is tried again: they
// double from lo to hi (default 1s to 1m).
func WithBackoff(lo, hi time.Duration) Option {
	return func(s *Service) { s.backoffMin, s.backoffMax = lo, hi }
}

// WithRecheck sets how often a held removal looks again for another server
// of the box to carry the traffic (default 30s).
func WithRecheck(d time.Duration) Option { return func(s *Service) { s.recheck = d } }

// New returns the failover service for the boxes of cfg that have a
// failover section.
func New(cfg *config.Config, deps Deps, opts ...Option) *Service {
	deps = deps.WithDefaults()
	deps.Metrics.Expect("failover", "failover")
	s := &Service{m: deps.Metrics,
		cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", "failover"), now: deps.Now,
		targets: map[string][]Target{},
		ackWait: 60 * time.Second, backoffMin: time.Second, backoffMax: time.Minute, recheck: 30 * time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	for i := range cfg.Boxes {
		if f := cfg.Boxes[i].Failover; f != nil {
			s.targets[cfg.Boxes[i].ID] = targetsOf(f, s.now)
		}
	}
	return s
}

// stores are the buckets failover reads and writes.
type stores struct {
	records jetstream.KeyValue // tocsin-failover: ours
	servers jetstream.KeyValue // tocsin-servers: the verifier's, read only
}

// Run acts on state changes until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	records, err := s.bus.KV(ctx, events.BucketFailover)
	if err != nil {
		return err
	}
	servers, err := s.bus.KV(ctx, events.BucketServers)
	if err != nil {
		return err
	}
	st := stores{records: records, servers: servers}
	if len(s.targets) == 0 {
		s.log.Info("no box has failover configured; state changes are followed and nothing is done")
	}
	return s.bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamEvents,
		Name:    "failover",
		Filter:  []string{events.SubjectServerChanges},
		Workers: 4,
		// One server's changes in order; different servers at once.
		Key:        events.SubjectID,
		Exclusive:  true, // one server's changes in order, by one instance
		AckWait:    s.ackWait,
		BackoffMin: s.backoffMin, BackoffMax: s.backoffMax,
		// Deployed afresh, act on what is recent only: the verifier's
		// state says whether an older change still holds.
		Since:   time.Hour,
		Metrics: s.m, Log: s.log,
	}, func(ctx context.Context, ev events.Event) error { return s.handle(ctx, st, ev) })
}

// Where a server stands at a target, by failover's doing.
const (
	placeIn       = ""         // in the pool as far as failover knows: never taken out, or put back
	placeRemoving = "removing" // being taken out: it may be out already
	placeOut      = "out"      // taken out by failover
	placeLeft     = "left"     // already out when failover came to take it out: not failover's to put back
)

// record is what the tocsin-failover bucket holds per server.
type record struct {
	Server string `json:"server"`
	Box    string `json:"box"`
	// The newest state change handled: what it went to, when, its id.
	Change   string             `json:"change"`
	Since    time.Time          `json:"since"`
	State    events.ServerState `json:"state"`
	Incident string             `json:"incident,omitempty"`
	// Held: the change's removal is held, for no other server of the box
	// is up and in the pool.
	Held   bool              `json:"held,omitempty"`
	Places map[string]*place `json:"places,omitempty"` // by target id
	// The actions recorded and not yet published.
	bus.Outbox
}

// place is where the server stands at one target, and how the current
// action is going there.
type place struct {
	At           string    `json:"at"`
	Attempts     int       `json:"attempts,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Refused      bool      `json:"refused,omitempty"` // refused for good: not tried again for this change
}

func (r *record) place(id string) *place {
	if r.Places == nil {
		r.Places = map[string]*place{}
	}
	if r.Places[id] == nil {
		r.Places[id] = &place{}
	}
	return r.Places[id]
}

// outByUs reports whether failover has the server out of some pool, or is
// taking it out.
func (r *record) outByUs() bool {
	for _, p := range r.Places {
		if p.At == placeRemoving || p.At == placeOut {
			return true
		}
	}
	return false
}

// handle takes one state change: if it is newer than what the record
// holds it becomes the server's current change; then whatever the current
// change asks for and is not done yet is done.
func (s *Service) handle(ctx context.Context, st stores, ev events.Event) error {
	c, ok := ev.Data.(*events.ServerStateChanged)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on a server changes subject", ev.Type))
	}
	box := s.cfg.Box(c.Box)
	targets := s.targets[c.Box]
	if box == nil || len(targets) == 0 {
		return nil // no failover for this box
	}
	if !slices.ContainsFunc(box.Servers, func(sv config.Server) bool { return sv.ID == c.Server }) {
		s.log.Info("state change of a server not in its box in the config; ignored", "server", c.Server, "box", c.Box)
		return nil
	}
	log := s.log.With("server", c.Server, "box", c.Box)
	var rec record
	rev, err := s.records(st).Read(ctx, c.Server, &rec)
	if err != nil {
		return err
	}
	if rev, err = s.flush(ctx, st, &rec, rev); err != nil {
		return err
	}
	if rec.Change != ev.ID {
		if !newer(ev.ID, c.Since, rec.Change, rec.Since) {
			return nil // an older change, delivered again: the newer one rules
		}
		if superseded, err := s.superseded(ctx, st, c); err != nil || superseded {
			return err // a newer change is on its way, and will rule
		}
		rec.Server, rec.Box = c.Server, c.Box
		rec.Change, rec.Since, rec.State, rec.Incident, rec.Held = ev.ID, c.Since, c.To, c.Incident, false
		for _, p := range rec.Places {
			p.Attempts, p.FailingSince, p.Refused = 0, time.Time{}, false
			if p.At == placeLeft {
				p.At = placeIn // looked at afresh at the next removal
			}
		}
		if rev, err = bus.PutJSON(ctx, st.records, c.Server, rec, rev); err != nil {
			return err
		}
	}
	a := &act{s: s, st: st, rec: &rec, rev: rev, ev: ev, change: c, box: box, targets: targets, log: log}
	switch rec.State {
	case events.StateDown:
		return a.remove(ctx)
	case events.StateUp:
		return a.restore(ctx)
	}
	// Suspect, maintenance, unknown, not in service: nothing is confirmed,
	// so nothing moves.
	return nil
}

// newer reports whether the change (id, since) comes after the recorded
// one. Changes are ordered by the time their state began and, for changes
// made by one result, by their number in the id the verifier gives them:
// "<server>/state/<n>-<unix ms>".
func newer(id string, since time.Time, recID string, recSince time.Time) bool {
	if recID == "" {
		return true
	}
	if !since.Equal(recSince) {
		return since.After(recSince)
	}
	n, ok1 := changeNumber(id)
	m, ok2 := changeNumber(recID)
	return ok1 && ok2 && n > m
}

func changeNumber(id string) (int64, bool) {
	_, rest, ok := strings.Cut(id, "/state/")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, "-")
	n, err := strconv.ParseInt(num, 10, 64)
	return n, err == nil
}

// verifierState is the verifier's record of a server, and whether there
// is one this version can read.
func (s *Service) verifierState(ctx context.Context, st stores, server string) (events.ServerRecord, bool, error) {
	var vs events.ServerRecord
	rev, err := bus.GetJSON(ctx, st.servers, server, &vs)
	return vs, rev > 0 && vs.State.Valid(), err
}

// superseded reports whether the verifier has moved the server on since
// the change: after a backlog or a restart, the change is then history,
// and acting on it would move the server twice.
func (s *Service) superseded(ctx context.Context, st stores, c *events.ServerStateChanged) (bool, error) {
	vs, ok, err := s.verifierState(ctx, st, c.Server)
	if err != nil || !ok {
		return false, err
	}
	return vs.Since.After(c.Since), nil
}

// records are failover's records as bus.Records: read with one policy for
// a record that cannot be read, and written before the actions they hold
// are published.
func (s *Service) records(st stores) bus.Records {
	return bus.Records{Bus: s.bus, KV: st.records, Log: s.log}
}

// errUnmarked is a record whose actions were published but could not be
// marked so: read afresh, they are published again, harmlessly.
var errUnmarked = errors.New("actions published, but the record could not say so; retrying")

// flush publishes the actions the record holds, then marks them published.
func (s *Service) flush(ctx context.Context, st stores, rec *record, rev uint64) (uint64, error) {
	// A record written before actions were held as events keeps them in
	// a form that cannot be published: they are dropped, and the next
	// attempt is announced afresh.
	if n := len(rec.Pending); n > 0 {
		rec.Pending = slices.DeleteFunc(rec.Pending, func(o bus.Outgoing) bool { return o.Subject == "" })
		if dropped := n - len(rec.Pending); dropped > 0 {
			s.log.Warn("actions held in an older form dropped unpublished", "server", rec.Server, "dropped", dropped)
		}
	}
	if len(rec.Pending) == 0 {
		return rev, nil
	}
	held := rec.Pending
	rev, err := s.records(st).Finish(ctx, rec.Server, rec, rev, func(context.Context, uint64) error {
		s.count(held)
		return nil
	})
	if err == nil && rev == 0 {
		err = errUnmarked
	}
	return rev, err
}

// count counts the actions published.
func (s *Service) count(out []bus.Outgoing) {
	for _, o := range out {
		if ev, err := events.Decode(o.Subject, o.Data); err == nil {
			if a, ok := ev.Data.(*events.ServerAction); ok {
				s.m.FailoverAction(string(a.Action), string(a.Outcome))
			}
		}
	}
}
