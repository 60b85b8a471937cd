package incident

import (
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// A storm's updates arriving out of order leave the newest in the view.
func TestMergeKeepsTheNewest(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	var v View
	v.Merge(events.New("i/opened", "v", t0, &events.IncidentOpened{Incident: "i", Opened: t0, Title: "a is down",
		Servers: []events.AffectedServer{{Server: "a", Box: "b1", Since: t0, BoxState: events.BoxDegraded}}}), 2)
	v.Merge(events.New("i/updated/2", "v", t0, &events.IncidentUpdated{Incident: "i", Seq: 2, At: t0, Title: "3 servers down in 2 boxes",
		Added: []events.AffectedServer{{Server: "c", Box: "b2", Since: t0, BoxState: events.BoxDown}}, Recovered: []string{"b"},
		Boxes: []events.BoxStatus{{Box: "b1", State: events.BoxDegraded}}, Down: []string{"a", "c"}}), 2)
	v.Merge(events.New("i/updated/1", "v", t0, &events.IncidentUpdated{Incident: "i", Seq: 1, At: t0, Title: "2 servers down",
		Added: []events.AffectedServer{{Server: "b", Box: "b1", Since: t0, BoxState: events.BoxDown}},
		Boxes: []events.BoxStatus{{Box: "b1", State: events.BoxDown}}, Down: []string{"a", "b"}}), 2)
	if v.Title != "3 servers down in 2 boxes" || len(v.Down) != 2 {
		t.Errorf("title %q, down %v: an older update overwrote a newer one", v.Title, v.Down)
	}
	if len(v.Servers) != 2 {
		t.Errorf("%d servers described, want at most 2", len(v.Servers))
	}
	if got := []string{string(v.BoxStates["b1"].State), string(v.BoxStates["b2"].State)}; got[0] != "degraded" || got[1] != "down" {
		t.Errorf("box states %v: an older update must not overwrite a newer state", got)
	}
	if !v.Public() {
		t.Error("a box is down: the outage is public")
	}

	v.Merge(events.New("i/note/2", "t", t0, &events.IncidentNote{Incident: "i", Seq: 2, Status: "monitoring", Message: "m2", By: "A", At: t0}), 2)
	v.Merge(events.New("i/note/1", "t", t0, &events.IncidentNote{Incident: "i", Seq: 1, Status: "identified", Message: "m1", By: "A", At: t0}), 2)
	v.Merge(events.New("i/note/1", "t", t0, &events.IncidentNote{Incident: "i", Seq: 1, Status: "identified", Message: "m1", By: "A", At: t0}), 2)
	if len(v.Notes) != 2 || v.Notes[0].Seq != 1 {
		t.Errorf("notes %+v: want each once, in order", v.Notes)
	}
	first := &events.IncidentAcknowledged{Incident: "i", By: "A", Via: "sms", At: t0}
	v.Merge(events.New("i/acknowledged", "n", t0, first), 2)
	v.Merge(events.New("i/acknowledged", "n", t0, &events.IncidentAcknowledged{Incident: "i", By: "B", Via: "cli", At: t0}), 2)
	if v.Acked != first {
		t.Errorf("acknowledged by %+v: the first must stand", v.Acked)
	}
	v.Merge(events.New("i/resolved", "v", t0, &events.IncidentResolved{Incident: "i", Opened: t0, Resolved: t0, Title: "3 servers down in 2 boxes", Servers: []string{"a", "b", "c"}}), 2)
	if v.Resolved == nil || len(v.Down) != 0 {
		t.Errorf("after the resolution: %+v", v)
	}
}

func TestDegradedIsNotPublic(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	var v View
	v.Merge(events.New("i/opened", "v", t0, &events.IncidentOpened{Incident: "i", Opened: t0, Title: "a is down",
		Servers: []events.AffectedServer{{Server: "a", Box: "b1", Since: t0, BoxState: events.BoxDegraded, StillUp: []string{"z"}}}}), 10)
	if v.Public() {
		t.Error("a box still serving made the outage public")
	}
}
