// Package incident is an incident as its events tell it, for the services
// that act on incidents: the notifier and the escalator each keep one per
// incident, merging every event into it in whatever order they handle
// them (an event waiting for a deadline comes back after later ones).
package incident

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// View is what the events have said of one incident.
type View struct {
	Incident string    `json:"incident"`
	Title    string    `json:"title"`
	Opened   time.Time `json:"opened"`
	// Servers are the details of the first servers to join, as many as
	// the keeper asked for: a storm's thousand are counted, not described.
	Servers []events.AffectedServer `json:"servers"`
	Boxes   []string                `json:"boxes"` // every box the incident touched, in order
	// Each box's state, and the update it came from.
	BoxStates map[string]events.BoxStatus `json:"box_states,omitempty"`
	BoxSeq    map[string]int64            `json:"box_seq,omitempty"`
	Down      []string                    `json:"down"`
	Seq       int64                       `json:"seq"` // the newest update merged
	// Flapping are the servers marked flapping: nobody is paged about them
	// until they settle.
	Flapping []string `json:"flapping,omitempty"`

	Acked    *events.IncidentAcknowledged `json:"acked,omitempty"` // the first acknowledgement
	Notes    []events.IncidentNote        `json:"notes,omitempty"` // staff updates, in order
	Resolved *events.IncidentResolved     `json:"resolved,omitempty"`
}

// Of is the incident an event is about, "" for an event about none.
func Of(ev events.Event) string {
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		return d.Incident
	case *events.IncidentUpdated:
		return d.Incident
	case *events.IncidentAcknowledged:
		return d.Incident
	case *events.IncidentNote:
		return d.Incident
	case *events.IncidentEscalated:
		return d.Incident
	case *events.IncidentResolved:
		return d.Incident
	}
	return ""
}

// Merge takes in what one event says, keeping the details of at most
// maxServers servers. Only the newest update sets the title and the
// servers still down, and a box's state is the newest said of it.
func (v *View) Merge(ev events.Event, maxServers int) {
	if id := Of(ev); id != "" {
		v.Incident = id
	}
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		v.Opened = d.Opened
		if v.Seq == 0 {
			v.Title = d.Title
			for _, a := range d.Servers {
				v.Down = appendNew(v.Down, a.Server)
			}
		}
		for _, a := range d.Servers {
			v.add(a, 0, maxServers)
		}
	case *events.IncidentUpdated:
		if v.Opened.IsZero() {
			v.Opened = d.Opened
		}
		for _, a := range d.Added {
			v.add(a, d.Seq, maxServers)
		}
		for _, b := range d.Boxes {
			v.setBox(b, d.Seq)
		}
		for _, f := range d.Flapping {
			if !slices.Contains(v.Flapping, f) {
				v.Flapping = append(v.Flapping, f)
			}
		}
		if d.Seq > v.Seq {
			v.Seq, v.Title, v.Down = d.Seq, d.Title, slices.Clone(d.Down)
		}
	case *events.IncidentAcknowledged:
		if v.Acked == nil {
			v.Acked = d
		}
	case *events.IncidentNote:
		if !slices.ContainsFunc(v.Notes, func(n events.IncidentNote) bool { return n.Seq == d.Seq }) {
			v.Notes = append(v.Notes, *d)
			slices.SortFunc(v.Notes, func(a, b events.IncidentNote) int { return int(a.Seq - b.Seq) })
		}
	case *events.IncidentResolved:
		v.Resolved, v.Title, v.Down = d, d.Title, nil
		if v.Opened.IsZero() {
			v.Opened = d.Opened
		}
	}
}

func (v *View) add(a events.AffectedServer, seq int64, maxServers int) {
	if len(v.Servers) < maxServers && !slices.ContainsFunc(v.Servers, func(s events.AffectedServer) bool { return s.Server == a.Server }) {
		v.Servers = append(v.Servers, a)
	}
	v.Boxes = appendNew(v.Boxes, a.Box)
	if a.BoxState != "" {
		v.setBox(events.BoxStatus{Box: a.Box, State: a.BoxState, Up: a.StillUp}, seq)
	}
}

// setBox records a box's state as of update seq, unless a newer update
// said otherwise already.
func (v *View) setBox(b events.BoxStatus, seq int64) {
	if v.BoxStates == nil {
		v.BoxStates, v.BoxSeq = map[string]events.BoxStatus{}, map[string]int64{}
	}
	v.Boxes = appendNew(v.Boxes, b.Box)
	if old, ok := v.BoxSeq[b.Box]; ok && old > seq {
		return
	}
	v.BoxStates[b.Box], v.BoxSeq[b.Box] = b, seq
}

// Public reports whether the incident is an outage customers see: a box
// with no server answering. While every box still serves, staff deal with
// it and the public need not hear of it.
func (v *View) Public() bool {
	for _, b := range v.BoxStates {
		if b.State == events.BoxDown {
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
