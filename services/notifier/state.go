package notifier

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// incidentState is what the notifier keeps of one incident, in the
// deliveries bucket under "<incident>.state": the incident as its events
// have told it, and what was sent about it.
type incidentState struct {
	Incident  string                      `json:"incident"`
	Title     string                      `json:"title"`
	Opened    time.Time                   `json:"opened"`
	Servers   []events.AffectedServer     `json:"servers"`
	Boxes     []string                    `json:"boxes"` // every box the incident touched, in order
	BoxStates map[string]events.BoxStatus `json:"box_states"`
	BoxSeq    map[string]int64            `json:"box_seq,omitempty"` // the update each box state came from
	Down      []string                    `json:"down"`
	Seq       int64                       `json:"seq"` // the newest update merged

	// What was sent. Covered is the newest update the last message told
	// of; Sending is a message begun and not yet delivered to everyone.
	FirstSent    time.Time                    `json:"first_sent,omitzero"`
	LastSent     time.Time                    `json:"last_sent,omitzero"`
	Covered      int64                        `json:"covered"`
	Digests      int                          `json:"digests"`
	Reminders    int                          `json:"reminders"`
	ResolvedSent bool                         `json:"resolved_sent,omitempty"`
	Sending      *sending                     `json:"sending,omitempty"`
	Told         map[string][]string          `json:"told,omitempty"` // staff key → channels of the opening message
	Acked        *events.IncidentAcknowledged `json:"acked,omitempty"`
	Resolved     *events.IncidentResolved     `json:"resolved,omitempty"`
}

// sending is a message claimed before it is sent: a crash or a provider
// failure in the middle leaves it here, and it is finished, never begun
// again under another number.
type sending struct {
	Kind string    `json:"kind"`
	N    int       `json:"n,omitempty"`
	At   time.Time `json:"at"`
	Seq  int64     `json:"seq"` // the newest update it tells of
}

func stateKey(incident string) string { return incident + ".state" }

// merge takes in what one event says of the incident. Updates may arrive
// out of order (one waits while the next is handled): only the newest sets
// the title and the servers still down.
func (st *incidentState) merge(ev events.Event) {
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		st.Incident, st.Opened = d.Incident, d.Opened
		if st.Seq == 0 {
			st.Title = d.Title
			for _, a := range d.Servers {
				st.Down = appendNew(st.Down, a.Server)
			}
		}
		for _, a := range d.Servers {
			st.addServer(a, 0)
		}
	case *events.IncidentUpdated:
		st.Incident = d.Incident
		if st.Opened.IsZero() {
			st.Opened = d.Opened
		}
		for _, a := range d.Added {
			st.addServer(a, d.Seq)
		}
		for _, b := range d.Boxes {
			st.setBox(b, d.Seq)
		}
		if d.Seq > st.Seq {
			st.Seq, st.Title, st.Down = d.Seq, d.Title, slices.Clone(d.Down)
		}
	case *events.IncidentAcknowledged:
		st.Incident = d.Incident
		if st.Acked == nil {
			st.Acked = d
		}
	case *events.IncidentResolved:
		st.Incident = d.Incident
		st.Resolved, st.Title, st.Down = d, d.Title, nil
	}
}

// maxDetailed is how many servers' details the state keeps for the
// messages; a storm's thousand servers are counted, not described.
const maxDetailed = 25

func (st *incidentState) addServer(a events.AffectedServer, seq int64) {
	if len(st.Servers) < maxDetailed && !slices.ContainsFunc(st.Servers, func(s events.AffectedServer) bool { return s.Server == a.Server }) {
		st.Servers = append(st.Servers, a)
	}
	st.Boxes = appendNew(st.Boxes, a.Box)
	if a.BoxState != "" {
		st.setBox(events.BoxStatus{Box: a.Box, State: a.BoxState, Up: a.StillUp}, seq)
	}
}

// setBox records a box's state as of update seq, unless a newer update
// already said otherwise.
func (st *incidentState) setBox(b events.BoxStatus, seq int64) {
	if st.BoxStates == nil {
		st.BoxStates, st.BoxSeq = map[string]events.BoxStatus{}, map[string]int64{}
	}
	st.Boxes = appendNew(st.Boxes, b.Box)
	if old, ok := st.BoxSeq[b.Box]; ok && old > seq {
		return
	}
	st.BoxStates[b.Box], st.BoxSeq[b.Box] = b, seq
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

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
