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
	// until they settle. OpenedFlapping: the incident was opened by one.
	Flapping       []string `json:"flapping,omitempty"`
	OpenedFlapping bool     `json:"opened_flapping,omitempty"`
	// Withdrawn are the servers taken out of service while down: they
	// left the incident without recovering.
	Withdrawn []string `json:"withdrawn,omitempty"`
	// Warning: the incident is a warning (a certificate or a domain about
	// to expire), not a failure.
	Warning bool `json:"warning,omitempty"`
	// OutageSince is when a box of the incident first served nobody:
	// when customers were first hit, and the public's clock starts.
	OutageSince time.Time `json:"outage_since,omitzero"`
	// EverDown is every box of the incident that served nobody at some
	// time: what the public is told about.
	EverDown []string `json:"ever_down,omitempty"`
	// What the people on call were sent, from the notifier's word: the
	// worst severity, the boxes said to serve nobody, and when first.
	Told     events.Severity `json:"told,omitempty"`
	ToldDown []string        `json:"told_down,omitempty"`
	ToldAt   time.Time       `json:"told_at,omitzero"`

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
	case *events.IncidentNotified:
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
		v.Warning = d.Severity == events.SeverityWarning
		v.OpenedFlapping = d.Flapping
		if v.Seq == 0 {
			v.Title = d.Title
			for _, a := range d.Servers {
				v.Down = appendNew(v.Down, a.Server)
			}
		}
		for _, a := range d.Servers {
			v.add(a, 0, maxServers, d.Opened)
		}
	case *events.IncidentUpdated:
		if v.Opened.IsZero() {
			v.Opened = d.Opened
		}
		for _, a := range d.Added {
			v.add(a, d.Seq, maxServers, d.At)
		}
		for _, b := range d.Boxes {
			v.setBox(b, d.Seq, d.At)
		}
		for _, f := range d.Flapping {
			v.Flapping = appendNew(v.Flapping, f)
		}
		for _, w := range d.Withdrawn {
			v.Withdrawn = appendNew(v.Withdrawn, w)
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
	case *events.IncidentNotified:
		if d.Severity.Worse(v.Told) {
			v.Told = d.Severity
		}
		for _, b := range d.DownBoxes {
			v.ToldDown = appendNew(v.ToldDown, b)
		}
		if v.ToldAt.IsZero() || d.At.Before(v.ToldAt) {
			v.ToldAt = d.At
		}
	case *events.IncidentResolved:
		for _, w := range d.Withdrawn {
			v.Withdrawn = appendNew(v.Withdrawn, w)
		}
		v.Resolved, v.Title, v.Down = d, d.Title, nil
		if v.Opened.IsZero() {
			v.Opened = d.Opened
		}
	}
}

func (v *View) add(a events.AffectedServer, seq int64, maxServers int, at time.Time) {
	if len(v.Servers) < maxServers && !slices.ContainsFunc(v.Servers, func(s events.AffectedServer) bool { return s.Server == a.Server }) {
		v.Servers = append(v.Servers, a)
	}
	v.Boxes = appendNew(v.Boxes, a.Box)
	if a.BoxState != "" {
		v.setBox(events.BoxStatus{Box: a.Box, State: a.BoxState, Up: a.StillUp}, seq, at)
	}
}

// setBox records a box's state as of update seq, said at at, unless a
// newer update said otherwise already.
func (v *View) setBox(b events.BoxStatus, seq int64, at time.Time) {
	if v.BoxStates == nil {
		v.BoxStates, v.BoxSeq = map[string]events.BoxStatus{}, map[string]int64{}
	}
	v.Boxes = appendNew(v.Boxes, b.Box)
	if b.State == events.BoxDown {
		v.EverDown = appendNew(v.EverDown, b.Box)
		if v.OutageSince.IsZero() || at.Before(v.OutageSince) {
			v.OutageSince = at
		}
	}
	if old, ok := v.BoxSeq[b.Box]; ok && old > seq {
		return
	}
	v.BoxStates[b.Box], v.BoxSeq[b.Box] = b, seq
}

// Severity is the incident's severity now: a warning stays a warning; a
// failure is an outage while a box of it serves nobody, degraded
// otherwise. It is judged from the boxes' states, which every event since
// the first carries, so events older than severities read the same.
func (v *View) Severity() events.Severity {
	switch {
	case v.Warning:
		return events.SeverityWarning
	case v.Public():
		return events.SeverityOutage
	}
	return events.SeverityDegraded
}

// DownBoxes is the boxes of the incident serving nobody now, in order.
func (v *View) DownBoxes() []string {
	var down []string
	for _, id := range v.Boxes {
		if v.BoxStates[id].State == events.BoxDown {
			down = append(down, id)
		}
	}
	return down
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
