package fleetstate

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var t0 = time.Date(2026, 11, 21, 2, 14, 0, 0, time.UTC)

const id = "20261121-ab12cd"

// seed writes what the verifier keeps when mx is down: the servers' and
// boxes' records, the incident open in dc1, its events, an acknowledgement.
func seed(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	for server, state := range map[string]events.ServerState{"web1": events.StateUp, "mx1": events.StateDown, "mx2": events.StateDown, "db1": events.StateUp} {
		bustest.Put(t, b, events.BucketServers, server, events.ServerRecord{ID: server, State: state, Since: t0})
	}
	bustest.Put(t, b, events.BucketServers, "odd1", map[string]any{"id": "odd1", "state": "sideways", "since": t0})
	for box, state := range map[string]events.BoxState{"web": events.BoxOperational, "mx": events.BoxDown, "db": events.BoxOperational} {
		bustest.Put(t, b, events.BucketBoxes, box, events.BoxRecord{State: state, Since: t0})
	}
	bustest.Put(t, b, events.BucketIncidents, events.KeyOpenIncidents("dc1"), events.OpenIncidents{Incidents: []events.OpenIncident{
		{ID: id, Boxes: []string{"mx"}, LastAdded: t0},
	}})
	for _, ev := range []events.Event{
		events.New(id+"/opened", "verifier", t0, &events.IncidentOpened{Incident: id, Opened: t0, Title: "mx1 and mx2 (Incoming mail) are down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: t0, BoxState: events.BoxDown}, {Server: "mx2", Box: "mx", Since: t0, BoxState: events.BoxDown}}}),
		events.New(id+"/acknowledged", "notifier", t0, &events.IncidentAcknowledged{Incident: id, By: "Alice", Via: events.AckViaSMS, At: t0.Add(3 * time.Minute)}),
		events.New(id+"/escalated/datacentre", "escalator", t0, &events.IncidentEscalated{Incident: id, Step: "datacentre", At: t0.Add(15 * time.Minute)}),
		// A resolved incident of yesterday, no longer listed as open.
		events.New("20261120-old111/opened", "verifier", t0, &events.IncidentOpened{Incident: "20261120-old111", Opened: t0.Add(-24 * time.Hour), Title: "web1 is down",
			Servers: []events.AffectedServer{{Server: "web1", Box: "web", Since: t0}}}),
	} {
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	b := bustest.New(t)
	seed(t, b)
	got, err := Load(context.Background(), b, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := State{
		Servers: map[string]events.ServerState{"web1": events.StateUp, "mx1": events.StateDown, "mx2": events.StateDown, "db1": events.StateUp},
		Boxes:   map[string]events.BoxState{"web": events.BoxOperational, "mx": events.BoxDown, "db": events.BoxOperational},
		Incidents: []Incident{{ID: id, Title: "mx1 and mx2 (Incoming mail) are down", Since: t0, Status: "acknowledged", AckedBy: "Alice",
			Boxes: []string{"mx"}, Down: []string{"mx1", "mx2"}, Escalations: []string{"datacentre"}}},
		AsOf: t0.Add(time.Hour),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state (-want +got):\n%s", diff)
	}
}

// A bus nobody has written to yet is an empty fleet, not an error.
func TestLoadEmpty(t *testing.T) {
	got, err := Load(context.Background(), bustest.New(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != 0 || len(got.Boxes) != 0 || len(got.Incidents) != 0 {
		t.Errorf("an empty bus read as %+v", got)
	}
}

func TestSince(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for at, want := range map[time.Time]string{
		now.Add(-2 * time.Hour):  "07:00 UTC",
		now.Add(-24 * time.Hour): "2026-11-20 09:00 UTC",
	} {
		if got := Since(at, now); got != want {
			t.Errorf("Since(%v) = %q, want %q", at, got, want)
		}
	}
}
