package events

import (
	"errors"
	"fmt"
	"time"
)

// SubjectServerActions is every action taken on a server's place in its
// load balancer, with its outcome.
const SubjectServerActions = "server.*.action"

// SubjectServerAction is where the actions on one server go.
func SubjectServerAction(server string) string { return "server." + server + ".action" }

// Action is what failover does to a server's place in its pool.
type Action string

// The actions.
const (
	ActionRemove  Action = "remove"  // out of the pool: the server was confirmed down
	ActionRestore Action = "restore" // back in the pool: the server recovered
)

// Outcome is how an action went.
type Outcome string

// The outcomes of an action.
const (
	// OutcomeDone: the target took the action and shows the server out of
	// (or back in) the pool.
	OutcomeDone Outcome = "done"
	// OutcomeRetrying: this attempt failed; the action is tried again.
	OutcomeRetrying Outcome = "retrying"
	// OutcomeFailed: the target refused the action for good (a server it
	// does not know, a webhook answering 4xx); it is not tried again
	// until the server changes state again. Staff must act.
	OutcomeFailed Outcome = "failed"
	// OutcomeHeld: the server was not taken out, because no other server of
	// its box is up and in the pool: the last one stays, dead or not.
	OutcomeHeld Outcome = "held"
	// OutcomeLeft: the target already had the server out of the pool
	// (an operator put it in maintenance): it is left as it is, and not
	// put back when the server recovers.
	OutcomeLeft Outcome = "left"
)

// ServerAction records one action of failover on one server at one
// target (an HAProxy instance, a webhook), or that it was held back. Staff
// see it with the incident: Alert says someone must act, because the
// action keeps failing or cannot succeed.
type ServerAction struct {
	Server  string  `json:"server"`
	Box     string  `json:"box"`
	Action  Action  `json:"action"`
	Via     string  `json:"via,omitempty"`    // haproxy or webhook; empty when held
	Target  string  `json:"target,omitempty"` // which one and what in it, in words: "haproxy /run/haproxy/admin.sock web/web1"
	Outcome Outcome `json:"outcome"`
	// Attempt counts the tries of this action at this target, from 1.
	Attempt int    `json:"attempt,omitempty"`
	Error   string `json:"error,omitempty"` // why it failed, or why it was held
	// FailingSince is when the first failed attempt was made.
	FailingSince time.Time `json:"failing_since,omitzero"`
	Alert        bool      `json:"alert,omitempty"`
	// Change is the id of the server.state_changed event that called for
	// the action, and Incident the incident of that change.
	Change   string `json:"change"`
	Incident string `json:"incident,omitempty"`
	// InPool is the other servers of the box left in the pool, by what
	// failover knows: who is carrying the traffic.
	InPool []string  `json:"in_pool,omitempty"`
	At     time.Time `json:"at"`
}

func (*ServerAction) EventType() Type   { return TypeServerAction }
func (a *ServerAction) Subject() string { return SubjectServerAction(a.Server) }
func (a *ServerAction) Validate() error {
	if err := checkToken("server", a.Server); err != nil {
		return err
	}
	if err := checkToken("box", a.Box); err != nil {
		return err
	}
	switch {
	case a.Action != ActionRemove && a.Action != ActionRestore:
		return fmt.Errorf("unknown action %q: remove or restore", a.Action)
	case a.Change == "":
		return errors.New("missing change")
	case a.At.IsZero():
		return errors.New("missing at")
	case a.Attempt < 0:
		return fmt.Errorf("attempt must not be negative, got %d", a.Attempt)
	}
	switch a.Outcome {
	case OutcomeDone, OutcomeLeft:
	case OutcomeRetrying, OutcomeFailed:
		if a.Error == "" {
			return fmt.Errorf("a %s action needs an error", a.Outcome)
		}
	case OutcomeHeld:
		if a.Action != ActionRemove {
			return errors.New("only a remove is held")
		}
		return nil
	default:
		return fmt.Errorf("unknown outcome %q", a.Outcome)
	}
	if a.Via == "" {
		return errors.New("missing via")
	}
	return nil
}
