// Package fleetstate reads what Tocsin knows now of its fleet: each
// server's and box's state from the verifier's buckets, and the incidents
// open, as their events tell them. It is what `tocsin status` and `tocsin
// affected` read, and the shape the status page's admin API answers in.
package fleetstate

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// State is what Tocsin knows now of its servers, boxes and open
// incidents: from the buckets and events for the command line, from the
// status page's own model for its admin API.
type State struct {
	Servers   map[string]events.ServerState `json:"servers"`
	Boxes     map[string]events.BoxState    `json:"boxes"`
	Incidents []Incident                    `json:"incidents"` // the open ones
	AsOf      time.Time                     `json:"as_of"`     // when it was read
}

// Incident is an open incident as staff need to see it.
type Incident struct {
	ID    string    `json:"id"`
	Title string    `json:"title"`
	Since time.Time `json:"since"`
	// Status is the newest staff update's status (identified,
	// monitoring…), "acknowledged" once someone took it on without
	// saying more, else "investigating".
	Status      string   `json:"status"`
	AckedBy     string   `json:"acknowledged_by,omitempty"`
	Boxes       []string `json:"boxes"`
	Down        []string `json:"down"`
	Escalations []string `json:"escalations,omitempty"` // the steps carried out: datacentre, social
}

// FromView is an incident as its events told it, with the escalation
// steps carried out.
func FromView(v *incident.View, escalations []string) Incident {
	inc := Incident{ID: v.Incident, Title: v.Title, Since: v.Opened, Status: events.NoteInvestigating,
		Boxes: slices.Clone(v.Boxes), Down: slices.Clone(v.Down), Escalations: escalations}
	if v.Acked != nil {
		inc.AckedBy, inc.Status = v.Acked.By, "acknowledged"
	}
	if n := len(v.Notes); n > 0 {
		inc.Status = v.Notes[n-1].Status
	}
	return inc
}

// Since says when something began as briefly as is clear: the time alone
// today, the date too before.
func Since(t, now time.Time) string {
	t = t.UTC()
	if t.Format("2006-01-02") == now.UTC().Format("2006-01-02") {
		return t.Format("15:04 UTC")
	}
	return t.Format("2006-01-02 15:04 UTC")
}
