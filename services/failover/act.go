package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

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
	// err is an action that could not be announced: invalid, it never
	// can be.
	err error
}

func (a *act) id(action events.Action) string { return a.rec.Change + "/" + string(action) }

// announce adds an event to the record, to be published once it is stored.
func (a *act) announce(id string, sa events.ServerAction) {
	sa.Server, sa.Box, sa.Change, sa.Incident = a.rec.Server, a.rec.Box, a.rec.Change, a.rec.Incident
	o, err := bus.Hold(events.New(id, Source, sa.At, &sa), 0)
	if err != nil {
		a.err = errors.Join(a.err, err)
		return
	}
	a.rec.Pending = append(a.rec.Pending, o)
}

// save stores the record and publishes what it announces.
func (a *act) save(ctx context.Context) error {
	if a.err != nil {
		return bus.Permanent(fmt.Errorf("announce a failover action: %w", a.err))
	}
	if len(a.rec.Pending) == 0 {
		rev, err := bus.PutJSON(ctx, a.st.records, a.rec.Server, a.rec, a.rev)
		a.rev = rev
		return err
	}
	held := a.rec.Pending
	_, rev, err := a.s.records(a.st).Commit(ctx, a.rec.Server, a.rec, a.rev, func(context.Context, uint64) error {
		a.s.count(held)
		return nil
	})
	if err == nil && rev == 0 {
		err = errUnmarked
	}
	a.rev = rev
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
		if a.rec.place(t.ID()).At != placeRemoving {
			continue
		}
		if err := a.apply(ctx, t, events.ActionRemove, placeOut, inPool, now); err != nil {
			errs = append(errs, err)
			continue
		}
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
		if err := a.apply(ctx, t, events.ActionRestore, placeIn, nil, now); err != nil {
			errs = append(errs, err)
			continue
		}
		a.log.Info("server back in the pool", "target", t.Describe(name))
	}
	if err := a.save(ctx); err != nil {
		return err
	}
	return outcome(errs)
}

// apply has t take the server out or put it back, as action says. Done, it
// records that the server now stands at to there and announces it, with
// inPool, the box's servers left in the pool; failed, it counts the attempt
// and returns the failure.
func (a *act) apply(ctx context.Context, t Target, action events.Action, to string, inPool []string, now time.Time) error {
	name := a.box.Failover.ServerName(a.rec.Server)
	err := t.Apply(ctx, Request{ID: a.id(action), Action: action, Server: a.rec.Server, Name: name, Box: a.box.ID, Change: a.ev, At: now})
	if err != nil {
		return a.failed(t, action, err, inPool, now)
	}
	p := a.rec.place(t.ID())
	p.At = to
	a.announce(a.id(action)+"/"+t.ID()+"/done", events.ServerAction{
		Action: action, Via: t.Via(), Target: t.Describe(name), Outcome: events.OutcomeDone,
		Attempt: p.Attempts + 1, At: now, InPool: inPool,
	})
	p.Attempts, p.FailingSince = 0, time.Time{}
	return nil
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
		// Both from the leader: a server back or put back a moment ago
		// is missed by a replica behind, and the removal would be held
		// with "no other server is up" for nothing.
		var vs events.ServerRecord
		rev, err := a.s.bus.GetLeaderJSON(ctx, a.st.servers, sv.ID, &vs)
		if err != nil {
			return nil, nil, err
		}
		if rev == 0 || !vs.State.Valid() || vs.State != events.StateUp {
			continue
		}
		var other record
		if _, err := a.s.records(a.st).ReadLeader(ctx, sv.ID, &other); err != nil {
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
