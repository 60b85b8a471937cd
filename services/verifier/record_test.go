package verifier

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// What the verifier stores reads as the records other services decode:
// nothing of its own, beside them in the same value, shadows a shared
// field.
func TestStoredRecordsReadAsShared(t *testing.T) {
	server := events.ServerRecord{ID: "mx1", State: events.StateUp, Since: clock, UpSince: clock.Add(-time.Hour)}
	rec := record{Server: judge.Server{ServerRecord: server, Seq: 3, Last: clock, Incident: "20261121-ab12cd"},
		BoxDirty: true, Leave: &leaving{Incident: "20261121-ab12cd", At: clock}}
	var gotServer events.ServerRecord
	roundTrip(t, rec, &gotServer)
	if diff := cmp.Diff(server, gotServer); diff != "" {
		t.Errorf("server record read as (-want +got):\n%s", diff)
	}
	box := events.BoxRecord{State: events.BoxDegraded, Since: clock}
	var gotBox events.BoxRecord
	roundTrip(t, boxRecord{BoxRecord: box, Seq: 4, Outbox: bus.Outbox{Pending: []bus.Outgoing{{Subject: "box.mx.changed", ID: "mx/state/4", Data: json.RawMessage(`{}`)}}}}, &gotBox)
	if gotBox != box {
		t.Errorf("box record read as %+v, want %+v", gotBox, box)
	}
	open := events.OpenIncidents{Incidents: []events.OpenIncident{{ID: "20261121-ab12cd", Boxes: []string{"mx"}, LastAdded: clock}}}
	var gotOpen events.OpenIncidents
	roundTrip(t, judge.Open{OpenIncidents: open}, &gotOpen)
	if diff := cmp.Diff(open, gotOpen); diff != "" {
		t.Errorf("open incidents read as (-want +got):\n%s", diff)
	}
}

func roundTrip(t *testing.T, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// A record as stored before the outbox moved to the bus package reads
// whole, its pending events and work included, and is written back the
// same: a verifier upgraded mid-outage carries on with what it held.
func TestStoredRecordKeepsItsForm(t *testing.T) {
	for name, stored := range map[string]string{
		"server": `{"id":"mx1","state":"down","since":"2026-11-21T02:15:20Z","seq":4,"fails":3,"oks":0,"last":"2026-11-21T02:15:20Z","failed_since":"2026-11-21T02:15:17Z","reason":"timeout after 10s","locations":["lon1","ams1"],"false_alarms":2,"flips":["2026-11-21T02:15:20Z"],"incident":"20261121-ab12cd","incident_opened":"2026-11-21T02:15:20Z","incident_title":"mx1 (Incoming mail) is down","pending":[{"subject":"server.mx1.changed","id":"mx1/state/4-1795227320000","data":{"v":1}}],"box_dirty":true,"flap":{"incident":"20261121-ab12cd","at":"2026-11-21T02:15:20Z"}}`,
		"box":    `{"state":"down","since":"2026-11-21T02:15:20Z","seq":3,"pending":[{"subject":"box.mx.changed","id":"mx/state/3-1795227320000","data":{"v":1}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			var rec any = &record{}
			if name == "box" {
				rec = &boxRecord{}
			}
			if err := json.Unmarshal([]byte(stored), rec); err != nil {
				t.Fatal(err)
			}
			back, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if string(back) != stored {
				t.Errorf("written back as\n%s\nwant\n%s", back, stored)
			}
		})
	}
}
