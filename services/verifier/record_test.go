package verifier

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
	roundTrip(t, boxRecord{BoxRecord: box, Seq: 4, Pending: []outgoing{{Subject: "box.mx.changed", ID: "mx/state/4", Data: json.RawMessage(`{}`)}}}, &gotBox)
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
