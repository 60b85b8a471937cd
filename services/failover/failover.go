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

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source is what failover's events say produced them.
const Source = "failover"

// Deps are what failover needs from outside.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	Now func() time.Time
	// Metrics, when nil, are made on a registry of the service's own.
	Metrics *metrics.Metrics
}

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
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
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
		Key:        func(subject string) string { return strings.Split(subject, ".")[1] },
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
	// Pending are events recorded and not yet published.
	Pending []pending `json:"pending,omitempty"`
}

// place is where the server stands at one target, and how the current
// action is going there.
type place struct {
	At           string    `json:"at"`
	Attempts     int       `json:"attempts,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Refused      bool      `json:"refused,omitempty"` // refused for good: not tried again for this change
}

type pending struct {
	ID     string              `json:"id"`
	Action events.ServerAction `json:"action"`
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
	rev, err := bus.GetJSON(ctx, st.records, c.Server, &rec)
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

// flush publishes the events the record holds, then clears them.
func (s *Service) flush(ctx context.Context, st stores, rec *record, rev uint64) (uint64, error) {
	if len(rec.Pending) == 0 {
		return rev, nil
	}
	for _, p := range rec.Pending {
		a := p.Action
		if err := s.bus.Publish(ctx, events.New(p.ID, Source, a.At, &a)); err != nil {
			return rev, err
		}
		s.m.FailoverAction(string(a.Action), string(a.Outcome))
	}
	rec.Pending = nil
	return bus.PutJSON(ctx, st.records, rec.Server, rec, rev)
}

// act is one handling of a server's current change.
type act struct {
	s       *Service
	st      stores
	rec     *record
	rev     uint64
	ev      events.Event
	change  *events.ServerStateChanged
	box     *config.Box
	targets []Target
	log     *slog.Logger
}

func (a *act) id(action events.Action) string { return a.rec.Change + "/" + string(action) }

// announce adds an event to the record, to be published once it is stored.
func (a *act) announce(id string, sa events.ServerAction) {
	sa.Server, sa.Box, sa.Change, sa.Incident = a.rec.Server, a.rec.Box, a.rec.Change, a.rec.Incident
	a.rec.Pending = append(a.rec.Pending, pending{ID: id, Action: sa})
}

// save stores the record and publishes what it announces.
func (a *act) save(ctx context.Context) error {
	rev, err := bus.PutJSON(ctx, a.st.records, a.rec.Server, a.rec, a.rev)
	if err != nil {
		return err
	}
	a.rev, err = a.s.flush(ctx, a.st, a.rec, rev)
	return err
}

// remove takes the server out of the pool at every target where it is
// still in, unless no other server of the box would be left to serve.
func (a *act) remove(ctx context.Context) error {
	name := a.box.Failover.ServerName(a.rec.Server)
	var todo []Target
	for _, t := range a.targets {
		if p := a.rec.place(t.ID()); p.At != placeOut && p.At != placeLeft && !p.Refused {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	now := a.s.now()
	inPool, unread, err := a.othersInPool(ctx)
	if err != nil {
		return fmt.Errorf("look for another server of box %s to carry the traffic: %w", a.box.ID, err)
	}
	// Once a removal has begun it is finished, whoever has fallen since:
	// the box's other targets must not be left disagreeing. A target that
	// could not be read then succeeds or fails at its own turn below.
	if len(unread) > 0 && !a.rec.outByUs() {
		return a.poolUnknown(ctx, unread, now)
	}
	if len(inPool) == 0 && !a.rec.outByUs() {
		if !a.rec.Held {
			a.rec.Held = true
			a.announce(a.id(events.ActionRemove)+"/held", events.ServerAction{
				Action: events.ActionRemove, Outcome: events.OutcomeHeld, At: now,
				Error: "no other server of the box is up and in the pool: the last one stays",
			})
			if err := a.save(ctx); err != nil {
				return err
			}
			a.log.Warn("server down, but it is the last of its box in the pool: left in", "recheck_in", a.s.recheck)
		}
		return bus.Later(a.s.recheck)
	}
	a.rec.Held = false

	// First, where the server stands: one already out by an administrator's
	// hand is left alone, and later left out. Then the intent is recorded,
	// so that a restart after the target acted knows the doing was ours.
	var errs []error
	for _, t := range todo {
		p := a.rec.place(t.ID())
		if p.At != placeIn {
			continue
		}
		states, known, err := t.States(ctx, []string{name})
		if err != nil {
			errs = append(errs, a.failed(t, events.ActionRemove, err, inPool, now))
			continue
		}
		if known && states[name].Excluded {
			p.At = placeLeft
			a.announce(a.id(events.ActionRemove)+"/"+t.ID()+"/left", events.ServerAction{
				Action: events.ActionRemove, Via: t.Via(), Target: t.Describe(name), Outcome: events.OutcomeLeft, At: now, InPool: inPool,
			})
			a.log.Info("server down, and already out of the pool by an operator's hand: left as it is", "target", t.Describe(name))
			continue
		}
		p.At = placeRemoving
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	for _, t := range todo {
		p := a.rec.place(t.ID())
		if p.At != placeRemoving {
			continue
		}
		err := t.Apply(ctx, Request{ID: a.id(events.ActionRemove), Action: events.ActionRemove, Server: a.rec.Server, Name: name, Box: a.box.ID, Change: a.ev, At: now})
		if err != nil {
			errs = append(errs, a.failed(t, events.ActionRemove, err, inPool, now))
			continue
		}
		p.At = placeOut
		a.announce(a.id(events.ActionRemove)+"/"+t.ID()+"/done", events.ServerAction{
			Action: events.ActionRemove, Via: t.Via(), Target: t.Describe(name), Outcome: events.OutcomeDone,
			Attempt: p.Attempts + 1, At: now, InPool: inPool,
		})
		p.Attempts, p.FailingSince = 0, time.Time{}
		a.log.Info("server taken out of the pool", "target", t.Describe(name), "in_pool", inPool)
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	return outcome(errs)
}

// restore puts the server back wherever failover took it out, once it has
// been up for the box's recover_after.
func (a *act) restore(ctx context.Context) error {
	name := a.box.Failover.ServerName(a.rec.Server)
	var todo []Target
	for _, t := range a.targets {
		if p := a.rec.place(t.ID()); (p.At == placeOut || p.At == placeRemoving) && !p.Refused {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	now := a.s.now()
	if wait := a.rec.Since.Add(a.box.Failover.RecoverAfter.D()).Sub(now); wait > 0 {
		return bus.Later(wait)
	}
	var errs []error
	for _, t := range todo {
		p := a.rec.place(t.ID())
		err := t.Apply(ctx, Request{ID: a.id(events.ActionRestore), Action: events.ActionRestore, Server: a.rec.Server, Name: name, Box: a.box.ID, Change: a.ev, At: now})
		if err != nil {
			errs = append(errs, a.failed(t, events.ActionRestore, err, nil, now))
			continue
		}
		p.At = placeIn
		a.announce(a.id(events.ActionRestore)+"/"+t.ID()+"/done", events.ServerAction{
			Action: events.ActionRestore, Via: t.Via(), Target: t.Describe(name), Outcome: events.OutcomeDone,
			Attempt: p.Attempts + 1, At: now,
		})
		p.Attempts, p.FailingSince = 0, time.Time{}
		a.log.Info("server back in the pool", "target", t.Describe(name))
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	return outcome(errs)
}

// alertAfter is the attempt from which a failing action asks staff to act.
const alertAfter = 3

// failed counts a failed attempt at t and announces it: the first three
// attempts, then the 4th, 8th, 16th…, so that an action failing for hours
// is heard of without a flood; from the third on, staff are asked to act,
// and at once when the target refused for good.
func (a *act) failed(t Target, action events.Action, err error, inPool []string, now time.Time) error {
	p := a.rec.place(t.ID())
	p.Attempts++
	if p.FailingSince.IsZero() {
		p.FailingSince = now
	}
	name := a.box.Failover.ServerName(a.rec.Server)
	sa := events.ServerAction{
		Action: action, Via: t.Via(), Target: t.Describe(name), Outcome: events.OutcomeRetrying,
		Attempt: p.Attempts, Error: firstLine(err.Error()), FailingSince: p.FailingSince,
		Alert: p.Attempts >= alertAfter, At: now, InPool: inPool,
	}
	id := fmt.Sprintf("%s/%s/attempt-%d", a.id(action), t.ID(), p.Attempts)
	log := a.log.With("target", sa.Target, "action", action, "attempt", p.Attempts, "err", err)
	if bus.IsPermanent(err) {
		p.Refused = true
		sa.Outcome, sa.Alert = events.OutcomeFailed, true
		id = fmt.Sprintf("%s/%s/failed", a.id(action), t.ID())
		log.Error("failover action refused for good: someone must act")
	} else if sa.Alert {
		log.Error("failover action keeps failing: retry scheduled, someone must look")
	} else {
		log.Warn("failover action failed: retry scheduled")
	}
	if p.Attempts <= alertAfter || p.Attempts&(p.Attempts-1) == 0 || p.Refused {
		a.announce(id, sa)
	}
	return fmt.Errorf("%s: %w", sa.Target, err)
}

// outcome is the handler's answer for the failures of one handling: none,
// nil; any worth a retry, a retry (of those only: what succeeded or was
// refused is recorded); only refusals, permanent.
func outcome(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	for _, err := range errs {
		if !bus.IsPermanent(err) {
			return errors.Join(errs...)
		}
	}
	return bus.Permanent(errors.Join(errs...))
}

// poolUnknown fails the removal at each target that could not say where
// the box's other servers stand. Until they all can, whether another server
// would carry the box is not known, so the server goes out nowhere; the
// failure is announced and retried as a failure of the action itself, or
// set aside when the target refused for good (a backend it does not know).
func (a *act) poolUnknown(ctx context.Context, unread []unreadTarget, now time.Time) error {
	var errs []error
	for _, u := range unread {
		err := fmt.Errorf("look for another server of box %s in the pool: %w", a.box.ID, u.err)
		if a.rec.place(u.t.ID()).Refused {
			// Refused for good earlier in this change and announced then;
			// another target's retries do not announce it again.
			errs = append(errs, fmt.Errorf("%s: %w", u.t.Describe(a.box.Failover.ServerName(a.rec.Server)), err))
			continue
		}
		errs = append(errs, a.failed(u.t, events.ActionRemove, err, nil, now))
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	return outcome(errs)
}

// unreadTarget is a target that could not be asked where the box's other
// servers stand, and why.
type unreadTarget struct {
	t   Target
	err error
}

// othersInPool is the other servers of the box that can carry its traffic:
// in service, up by the verifier's judgement, not taken out by failover,
// and serving at every target that can tell. The targets that could not be
// asked are returned apart, as the action's failures there; err is
// failover's own records failing.
func (a *act) othersInPool(ctx context.Context) (ids []string, unread []unreadTarget, err error) {
	var names []string
	byName := map[string]string{}
	for _, sv := range a.box.Servers {
		if sv.ID == a.rec.Server || !sv.Serving() {
			continue
		}
		vs, ok, err := a.s.verifierState(ctx, a.st, sv.ID)
		if err != nil {
			return nil, nil, err
		}
		if !ok || vs.State != events.StateUp {
			continue
		}
		var other record
		if _, err := bus.GetJSON(ctx, a.st.records, sv.ID, &other); err != nil {
			return nil, nil, err
		}
		if other.outByUs() {
			continue
		}
		n := a.box.Failover.ServerName(sv.ID)
		names = append(names, n)
		byName[n] = sv.ID
	}
	if len(names) == 0 {
		return nil, nil, nil
	}
	for _, t := range a.targets {
		states, known, err := t.States(ctx, names)
		if err != nil {
			unread = append(unread, unreadTarget{t, err})
			continue
		}
		if !known {
			continue
		}
		names = slices.DeleteFunc(names, func(n string) bool { return !states[n].Serving })
	}
	ids = make([]string, len(names))
	for i, n := range names {
		ids[i] = byName[n]
	}
	return ids, unread, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
