package notifier

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// incidentState is what the notifier keeps of one incident, in the
// deliveries bucket under "<incident>.state": the incident as its events
// have told it, and what was sent about it.
type incidentState struct {
	incident.View

	// What was sent. Covered is the newest update the last message told
	// of; Sending is a message begun and not yet delivered to everyone.
	FirstSent    time.Time           `json:"first_sent,omitzero"`
	LastSent     time.Time           `json:"last_sent,omitzero"`
	Covered      int64               `json:"covered"`
	Digests      int                 `json:"digests"`
	Reminders    int                 `json:"reminders"`
	ResolvedSent bool                `json:"resolved_sent,omitempty"`
	Sending      *sending            `json:"sending,omitempty"`
	Told         map[string][]string `json:"told,omitempty"` // staff key → channels of the opening message
	// Rang: staff key → an SMS about the incident reached them. A storm
	// keeps some phones quiet; their resolution goes by email.
	Rang map[string]bool `json:"rang,omitempty"`
	// ActionsTold is how many of failover's actions in the incident's
	// action log a message has told of.
	ActionsTold int `json:"actions_told,omitempty"`
	// Waker is the one update held back to look at the incident again
	// when its next digest is due, at WakeAt: the others are done once
	// merged, so that a storm's thousand updates never all wait
	// unacknowledged, which would fill the consumer's window and stop it.
	Waker  string    `json:"waker,omitempty"`
	WakeAt time.Time `json:"wake_at,omitzero"`
	// Paged is the worst severity the people on call were paged about,
	// and PagedDown the boxes a page said serve nobody: news worse than
	// these pages again at once. Worse counts those pages.
	Paged     events.Severity `json:"paged,omitempty"`
	PagedDown []string        `json:"paged_down,omitempty"`
	PagedAt   time.Time       `json:"paged_at,omitzero"`
	Worse     int             `json:"worse,omitempty"`
	// LastSeverity and LastDown are what the last message that told of
	// the incident's state said: its severity and the boxes serving
	// nobody. A digest saying an outage is back to degraded lowers them,
	// so that the box going down again is news that pages.
	LastSeverity events.Severity `json:"last_severity,omitempty"`
	LastDown     []string        `json:"last_down,omitempty"`
	// StormDown is the boxes down the storm record holds for the
	// incident (see noteStorm).
	StormDown []string `json:"storm_down,omitempty"`
	// Policy is the incident's escalation: when its policy started,
	// which rungs were settled, and the acknowledgement that stopped it.
	// It starts with the opening page of an incident that pages (not a
	// warning, not a flapping server's); without it the incident is
	// repeated every repeat_every instead.
	Policy policy.Record `json:"policy,omitzero"`
	// AckNotices counts the notices of an acknowledgement sent to those
	// paged: one per acknowledgement that stopped the policy.
	AckNotices int `json:"ack_notices,omitempty"`
}

// sending is a message claimed before it is sent: a crash or a provider
// failure in the middle leaves it here, and it is finished, never begun
// again under another number.
type sending struct {
	Kind string    `json:"kind"`
	N    int       `json:"n,omitempty"`
	At   time.Time `json:"at"`
	Seq  int64     `json:"seq"` // the newest update it tells of
	// Actions is how many of failover's logged actions it tells of.
	Actions int `json:"actions,omitempty"`
	// A page (the opening, or worse news) says what it pages about: the
	// severity and the boxes serving nobody, as they were when claimed.
	Severity events.Severity `json:"severity,omitempty"`
	Down     []string        `json:"down,omitempty"`
	// Steps are the rungs of the escalation policy the message settles:
	// whom it pages beyond its usual audience, and the rungs it names as
	// skipped. Policy, when set, is the record the steps belong to: the
	// one the opening starts, or a rise changes.
	Steps  []policy.Step  `json:"steps,omitempty"`
	Policy *policy.Record `json:"policy,omitempty"`
	// Ack is the acknowledgement an ACK notice tells of.
	Ack *policy.Ack `json:"ack,omitempty"`
}

func stateKey(incident string) string { return incident + ".state" }

// maxDetailed is how many servers' details the state keeps for the
// messages; a storm's thousand servers are counted, not described.
const maxDetailed = 25

func (st *incidentState) merge(ev events.Event) { st.View.Merge(ev, maxDetailed) }

// loadState reads an incident's state; the zero state and revision 0 for
// one never seen. An unreadable state starts afresh rather than stop
// telling people: the delivery records still keep what went out from going
// again.
func loadState(ctx context.Context, kv jetstream.KeyValue, incident string) (incidentState, uint64, error) {
	var st incidentState
	rev, err := bus.GetJSON(ctx, kv, stateKey(incident), &st)
	return st, rev, err
}

// saveState writes the state if nobody wrote it since rev.
func saveState(ctx context.Context, kv jetstream.KeyValue, st incidentState, rev uint64) (uint64, error) {
	return bus.PutJSON(ctx, kv, stateKey(st.Incident), st, rev)
}
