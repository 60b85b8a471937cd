package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// actionLog is what failover did during one incident, kept in the
// deliveries bucket under "<incident>.actions": taking a server out of its
// pool or putting it back is news to staff, but not worth a page of its
// own, so it waits for the incident's next email.
type actionLog struct {
	Actions []loggedAction `json:"actions"`
}

// loggedAction is one action with its outcome, and the id of the event
// that told of it, so that a redelivered event is logged once.
type loggedAction struct {
	Event string `json:"event"`
	events.ServerAction
}

func actionsKey(incident string) string { return incident + ".actions" }

// toldOfAction reports whether staff hear of an action in the incident's messages:
// its final outcomes do; an attempt still being retried does not (it is
// followed by one that does, or by an alert of its own).
func toldOfAction(a *events.ServerAction) bool {
	return a.Incident != "" && a.Outcome != events.OutcomeRetrying
}

// logAction records an action of failover in the log of its incident.
func logAction(ctx context.Context, kv jetstream.KeyValue, ev events.Event, a *events.ServerAction) error {
	if !toldOfAction(a) {
		return nil
	}
	key := actionsKey(a.Incident)
	for range 10 {
		var l actionLog
		rev, err := bus.GetJSON(ctx, kv, key, &l)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(l.Actions, func(x loggedAction) bool { return x.Event == ev.ID }) {
			return nil
		}
		l.Actions = append(l.Actions, loggedAction{Event: ev.ID, ServerAction: *a})
		if _, err := bus.PutJSON(ctx, kv, key, l, rev); err == nil || !bus.IsConflict(err) {
			return err
		}
	}
	return errors.New("the incident's action log kept changing; retrying")
}

// loggedActions reads the incident's action log.
func loggedActions(ctx context.Context, kv jetstream.KeyValue, incident string) (actionLog, error) {
	var l actionLog
	_, err := bus.GetJSON(ctx, kv, actionsKey(incident), &l)
	return l, err
}

// actionLine says what failover did, in words for staff:
// "mx1 taken out of haproxy mail/mx1: done at 02:15".
func actionLine(a events.ServerAction) string {
	at := a.At.UTC().Format("15:04")
	target := a.Target
	if target == "" {
		target = a.Via
	}
	what := a.Server + " taken out of " + target
	if a.Action == events.ActionRestore {
		what = a.Server + " put back in " + target
	}
	switch a.Outcome {
	case events.OutcomeDone:
		return fmt.Sprintf("%s: done at %s", what, at)
	case events.OutcomeFailed:
		return fmt.Sprintf("%s: FAILED at %s (%s); do it by hand", what, at, a.Error)
	case events.OutcomeHeld:
		why := a.Error
		if why == "" {
			why = "no other server of its box is up"
		}
		return fmt.Sprintf("%s kept in its pool at %s: %s", a.Server, at, why)
	case events.OutcomeLeft:
		return fmt.Sprintf("%s left out of %s at %s: it was out already, and stays out", a.Server, target, at)
	}
	return fmt.Sprintf("%s: %s at %s", what, a.Outcome, at)
}

// actionRows are the rows an email gives the actions it tells of.
func actionRows(actions []loggedAction) [][2]string {
	rows := make([][2]string, 0, len(actions))
	for _, a := range actions {
		rows = append(rows, kv("Failover", actionLine(a.ServerAction)))
	}
	return rows
}

// tellsOfActions reports whether a kind of message lists failover's
// actions: the emails everyone routed to the incident gets, not the
// reminders that only the person on call receives.
func tellsOfActions(kind string) bool {
	return kind == kindOpened || kind == kindDigest || kind == kindResolved
}

// withActions adds to a message the actions logged since the last one
// told of, up to those the message was claimed with, so that a message
// finished after a crash says what it said when begun.
func (n *Notifier) withActions(ctx context.Context, kv jetstream.KeyValue, st *incidentState, s sending, m *message) error {
	if s.Actions <= st.ActionsTold {
		return nil
	}
	// From the leader: the claim counted actions logged a moment before,
	// which a replica behind would not have, and the lines it misses would
	// be marked told unsaid.
	var l actionLog
	if _, err := n.bus.GetLeaderJSON(ctx, kv, actionsKey(st.Incident), &l); err != nil {
		return err
	}
	upto := min(s.Actions, len(l.Actions))
	if upto > st.ActionsTold {
		m.body.section(actionRows(l.Actions[st.ActionsTold:upto])...)
	}
	return nil
}

// claimActions notes on a message about to be claimed how many actions it
// tells of.
func claimActions(ctx context.Context, kv jetstream.KeyValue, st *incidentState, s *sending) error {
	if !tellsOfActions(s.Kind) {
		s.Actions = st.ActionsTold
		return nil
	}
	l, err := loggedActions(ctx, kv, st.Incident)
	if err != nil {
		return err
	}
	s.Actions = max(len(l.Actions), st.ActionsTold)
	return nil
}
