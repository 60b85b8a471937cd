package verifier

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestSweepTellsAnIncidentOfAServerBack: an open incident that still holds
// as down a server whose own record says it came back (the work that
// would have told it lost) is told on the second look that sees it; a
// record read from before the server joined (a replica behind) never
// makes it leave.
func TestSweepTellsAnIncidentOfAServerBack(t *testing.T) {
	t.Parallel()
	b := mx1DownThenStopped(t)
	stop := start(t, b, testConfig(t))
	publishResult(t, b, "mx2", 10, false)
	answer(t, b, "mx2", 11, false)
	waitState(t, b, "mx2", events.StateDown)
	stop()

	ctx := context.Background()
	v := New(testConfig(t), Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	st, err := v.openStores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type server struct {
		rec record
		rev uint64
	}
	read := func(id string) server {
		var s server
		if s.rev, err = st.servers.Read(ctx, id, &s.rec); err != nil || s.rec.State != events.StateDown || s.rec.Incident == "" {
			t.Fatalf("%s's record %+v (%v), want it down in an incident", id, s.rec.Server, err)
		}
		return s
	}
	mx1, mx2 := read("mx1"), read("mx2")
	incident := mx1.rec.Incident
	if mx2.rec.Incident != incident {
		t.Fatalf("mx2 in incident %q, want mx1's %q", mx2.rec.Incident, incident)
	}
	member := func(id string) (joined, recovered time.Time, resolved bool) {
		var inc incidentRecord
		if _, err := st.incidents.Read(ctx, incident, &inc); err != nil {
			t.Fatal(err)
		}
		m := inc.Members[id]
		return m.Since, m.Recovered, !inc.Resolved.IsZero()
	}
	// A server's record as it came back, without the incident told.
	back := func(id string, s *server, at time.Time) {
		rec := s.rec
		rec.State, rec.Since, rec.UpSince, rec.Last = events.StateUp, at, at, at
		rec.Incident, rec.IncidentOpened, rec.IncidentTitle = "", time.Time{}, ""
		rec.Round, rec.Fails, rec.OKs = nil, 0, 2
		if s.rev, err = bus.PutJSON(ctx, st.servers.KV, id, rec, s.rev); err != nil {
			t.Fatal(err)
		}
	}
	looks := func(n int) {
		var seen map[string]bool
		for range n {
			seen = v.sweep(ctx, st, seen)
		}
	}
	opened, _, _ := member("mx1")
	joined, _, _ := member("mx2")

	// After the incident opened but before mx2 joined it: a replica behind.
	back("mx2", &mx2, opened.Add((joined.Sub(opened))/2))
	looks(3)
	if _, recovered, _ := member("mx2"); !recovered.IsZero() {
		t.Fatalf("a record from before mx2 joined made it leave its incident at %v", recovered)
	}

	at := joined.Add(time.Minute)
	back("mx2", &mx2, at)
	looks(1)
	if _, recovered, _ := member("mx2"); !recovered.IsZero() {
		t.Fatal("mx2 left its incident on the first look that saw it back")
	}
	looks(2)
	if _, recovered, resolved := member("mx2"); !recovered.Equal(at) || resolved {
		t.Fatalf("after two looks: mx2 recovered %v (want %v), incident resolved %v (want open: mx1 is down)", recovered, at, resolved)
	}

	back("mx1", &mx1, at.Add(time.Second))
	looks(2)
	if _, _, resolved := member("mx1"); !resolved {
		t.Fatal("the incident is still open with both its servers back")
	}
	if r := resolution(t, b); r.Incident != incident || !r.Resolved.Equal(at.Add(time.Second)) {
		t.Errorf("resolution %s at %v, want %s at %v", r.Incident, r.Resolved, incident, at.Add(time.Second))
	}
}

// TestSweptLeaveKeepsANewerOutage: the sweep's leave names the outage it
// judged; a server that failed again and joined the incident again, for a
// newer outage, before the sweep wrote, stays in it.
func TestSweptLeaveKeepsANewerOutage(t *testing.T) {
	t.Parallel()
	b := mx1DownThenStopped(t)
	ctx := context.Background()
	cfg := testConfig(t)
	v := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	st, err := v.openStores(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if _, err := st.servers.Read(ctx, "mx1", &rec); err != nil || rec.Incident == "" {
		t.Fatalf("mx1's record %+v (%v), want it down in an incident", rec.Server, err)
	}
	var inc incidentRecord
	if _, err := st.incidents.Read(ctx, rec.Incident, &inc); err != nil {
		t.Fatal(err)
	}
	joined := inc.Members["mx1"]
	target, _ := cfg.Target("mx1")
	at := joined.Since.Add(time.Minute)
	if err := v.leave(ctx, st, target, leaving{Incident: rec.Incident, At: at, Outage: joined.Outage + "-older"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.incidents.Read(ctx, rec.Incident, &inc); err != nil || !inc.Members["mx1"].Recovered.IsZero() {
		t.Fatalf("a leave of another outage made mx1 leave (%v, %v)", inc.Members["mx1"], err)
	}
	if err := v.leave(ctx, st, target, leaving{Incident: rec.Incident, At: at, Outage: joined.Outage}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.incidents.Read(ctx, rec.Incident, &inc); err != nil || !inc.Members["mx1"].Recovered.Equal(at) {
		t.Fatalf("a leave of mx1's own outage: %v, %v; want it recovered at %v", inc.Members["mx1"], err, at)
	}
}
