package escalator

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// state is what the escalator keeps of one incident in the escalations
// bucket: the incident as its events told it, and which steps were taken.
type state struct {
	Incident string                  `json:"incident"`
	Title    string                  `json:"title"`
	Opened   time.Time               `json:"opened"`
	Servers  []events.AffectedServer `json:"servers"` // with what the checks saw, for the datacentre
	Boxes    []string                `json:"boxes"`
	Down     []string                `json:"down"`
	Seq      int64                   `json:"seq"`
	// Each box's state, and the update it came from: a box down is an
	// outage the public must hear of; a degraded one still serves.
	BoxStates map[string]events.BoxState `json:"box_states,omitempty"`
	BoxSeq    map[string]int64           `json:"box_seq,omitempty"`

	Acked    *events.IncidentAcknowledged `json:"acked,omitempty"`
	Resolved *events.IncidentResolved     `json:"resolved,omitempty"`
	Notes    []events.IncidentNote        `json:"notes,omitempty"`

	// When each step was taken, and whether an acknowledgement cancelled it.
	DatacentreDone time.Time       `json:"datacentre_done,omitzero"`
	SocialDone     time.Time       `json:"social_done,omitzero"`
	Cancelled      map[string]bool `json:"cancelled,omitempty"`
}

// maxServers is how many servers' details the state keeps for the
// datacentre's ticket; the rest are listed by name.
const maxServers = 200

func (st *state) merge(ev events.Event, cfg *config.Config) {
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
			st.add(a, 0)
		}
	case *events.IncidentUpdated:
		st.Incident = d.Incident
		if st.Opened.IsZero() {
			st.Opened = d.Opened
		}
		for _, a := range d.Added {
			st.add(a, d.Seq)
		}
		for _, b := range d.Boxes {
			st.setBox(b.Box, b.State, d.Seq)
		}
		if d.Seq > st.Seq {
			st.Seq, st.Title, st.Down = d.Seq, d.Title, slices.Clone(d.Down)
		}
	case *events.IncidentAcknowledged:
		st.Incident = d.Incident
		if st.Acked == nil {
			st.Acked = d
			for _, step := range cfg.Escalation.AckCancels {
				if st.Cancelled == nil {
					st.Cancelled = map[string]bool{}
				}
				st.Cancelled[step] = true
			}
		}
	case *events.IncidentNote:
		st.Incident = d.Incident
		if !slices.ContainsFunc(st.Notes, func(n events.IncidentNote) bool { return n.Seq == d.Seq }) {
			st.Notes = append(st.Notes, *d)
			slices.SortFunc(st.Notes, func(a, b events.IncidentNote) int { return int(a.Seq - b.Seq) })
		}
	case *events.IncidentResolved:
		st.Incident = d.Incident
		st.Resolved, st.Title, st.Down = d, d.Title, nil
		if st.Opened.IsZero() {
			st.Opened = d.Opened
		}
	}
}

func (st *state) add(a events.AffectedServer, seq int64) {
	if len(st.Servers) < maxServers && !slices.ContainsFunc(st.Servers, func(s events.AffectedServer) bool { return s.Server == a.Server }) {
		st.Servers = append(st.Servers, a)
	}
	st.Boxes = appendNew(st.Boxes, a.Box)
	if a.BoxState != "" {
		st.setBox(a.Box, a.BoxState, seq)
	}
}

// setBox records a box's state as of update seq, unless a newer update
// said otherwise already (updates may be handled out of order).
func (st *state) setBox(box string, s events.BoxState, seq int64) {
	if st.BoxStates == nil {
		st.BoxStates, st.BoxSeq = map[string]events.BoxState{}, map[string]int64{}
	}
	if old, ok := st.BoxSeq[box]; ok && old > seq {
		return
	}
	st.BoxStates[box], st.BoxSeq[box] = s, seq
}

// public reports whether the incident is an outage customers see: a box
// with no server answering. While every box still serves, staff and the
// datacentre deal with it and the public need not hear of it.
func (st *state) public() bool {
	for _, s := range st.BoxStates {
		if s == events.BoxDown {
			return true
		}
	}
	return false
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// due says which steps are to be taken now, and when the next one falls due
// (zero: none left, or none until something changes). A step is taken
// once, when its timeout has passed with the incident unresolved and the
// step not cancelled; a step whose timeout is 0 is off. The public step
// waits, past its timeout, for a box to be down: the update that says so
// brings it.
func due(st *state, datacentreAfter, socialAfter time.Duration, now time.Time) (steps []string, next time.Time) {
	if st.Resolved != nil || st.Opened.IsZero() {
		return nil, time.Time{}
	}
	for _, s := range []struct {
		step  string
		after time.Duration
		done  time.Time
	}{{config.StepDatacentre, datacentreAfter, st.DatacentreDone}, {config.StepSocial, socialAfter, st.SocialDone}} {
		if s.after <= 0 || !s.done.IsZero() || st.Cancelled[s.step] {
			continue
		}
		at := st.Opened.Add(s.after)
		if !now.Before(at) {
			if s.step != config.StepSocial || st.public() {
				steps = append(steps, s.step)
			}
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return steps, next
}
