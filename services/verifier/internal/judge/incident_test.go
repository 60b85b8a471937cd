package judge

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var naming = Naming{
	BoxName:    func(b string) string { return map[string]string{"mx": "Incoming mail", "web": "Web hosting"}[b] },
	Datacentre: "DC One",
}

func affected(server, box string, at time.Time, state events.BoxState, up ...string) events.AffectedServer {
	return events.AffectedServer{Server: server, Box: box, Check: "tcp://" + server + ":25", Since: at, BoxState: state, StillUp: up}
}

// A datacentre losing power: servers of several boxes join one incident,
// which says how big the outage is, follows each box, and resolves only
// when the last server is back.
func TestIncidentLife(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "20261121-abcdef", Datacentre: "dc1"}

	got := inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, false, naming)
	want := &events.IncidentOpened{
		Incident: "20261121-abcdef", Opened: t0, Title: "mx1 (Incoming mail) is down", Datacentre: "dc1",
		Servers:  []events.AffectedServer{affected("mx1", "mx", t0, events.BoxDegraded, "mx2")},
		Severity: events.SeverityDegraded,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("first server (-want +got):\n%s", d)
	}
	if again := inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, false, naming); again != nil {
		t.Fatalf("the same outage joined twice: %+v", again)
	}

	t1 := t0.Add(20 * time.Second)
	got = inc.Join(affected("mx2", "mx", t1, events.BoxDown), "o-mx2", t1, false, naming)
	wantU := &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 1, At: t1, Opened: t0, Title: "2 servers of Incoming mail are down",
		Added:    []events.AffectedServer{affected("mx2", "mx", t1, events.BoxDown)},
		Boxes:    []events.BoxStatus{{Box: "mx", State: events.BoxDown}},
		Down:     []string{"mx1", "mx2"},
		Severity: events.SeverityOutage,
	}
	if d := cmp.Diff(wantU, got); d != "" {
		t.Fatalf("second server of the box: the box is down, an outage (-want +got):\n%s", d)
	}

	t2 := t1.Add(10 * time.Second)
	got = inc.Join(affected("web1", "web", t2, events.BoxDegraded, "web2"), "o-web1", t2, false, naming)
	if u := got.(*events.IncidentUpdated); u.Title != "3 servers down in 2 boxes at DC One" || u.Seq != 2 || len(u.Boxes) != 1 {
		t.Fatalf("a server of another box: %+v", u)
	}

	t3 := t2.Add(time.Hour)
	got = inc.Leave("mx1", t3, events.BoxStatus{Box: "mx", State: events.BoxDegraded, Up: []string{"mx1"}}, false)
	wantU = &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 3, At: t3, Opened: t0, Title: "3 servers down in 2 boxes at DC One",
		Recovered: []string{"mx1"},
		Boxes:     []events.BoxStatus{{Box: "mx", State: events.BoxDegraded, Up: []string{"mx1"}}},
		Down:      []string{"mx2", "web1"},
		Severity:  events.SeverityDegraded,
	}
	if d := cmp.Diff(wantU, got); d != "" {
		t.Fatalf("one back (-want +got):\n%s", d)
	}
	if again := inc.Leave("mx1", t3, events.BoxStatus{Box: "mx", State: events.BoxDegraded}, false); again != nil {
		t.Fatalf("back twice: %+v", again)
	}
	if u := inc.Leave("web1", t3, events.BoxStatus{Box: "web", State: events.BoxDegraded}, false).(*events.IncidentUpdated); u.Boxes != nil {
		t.Errorf("a box whose state did not change is reported: %+v", u.Boxes)
	}
	got = inc.Leave("mx2", t3.Add(time.Minute), events.BoxStatus{Box: "mx", State: events.BoxOperational}, false)
	wantR := &events.IncidentResolved{
		Incident: "20261121-abcdef", Opened: t0, Resolved: t3.Add(time.Minute),
		Title: "3 servers down in 2 boxes at DC One", Servers: []string{"mx1", "mx2", "web1"},
		// The worst it reached; Incoming mail served nobody from t1 to t3.
		Severity: events.SeverityOutage, CustomersAffectedMS: t3.Sub(t1).Milliseconds(),
	}
	if d := cmp.Diff(wantR, got); d != "" {
		t.Fatalf("the last one back (-want +got):\n%s", d)
	}
}

func TestIncidentRejoinAfterRecovery(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "i"}
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded), "o1", t0, false, naming)
	inc.Join(affected("mx2", "mx", t0, events.BoxDown), "o2", t0, false, naming)
	inc.Leave("mx1", t0.Add(time.Minute), events.BoxStatus{Box: "mx", State: events.BoxDegraded}, false)
	got := inc.Join(affected("mx1", "mx", t0.Add(2*time.Minute), events.BoxDown), "o3", t0.Add(2*time.Minute), false, naming)
	if u, ok := got.(*events.IncidentUpdated); !ok || len(u.Added) != 1 || len(u.Down) != 2 {
		t.Fatalf("a server down again in a new outage: %+v", got)
	}
}

func TestOpenChoose(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	window := 2 * time.Minute
	var o Open
	if got := o.Choose("mx", t0, window); got != "" {
		t.Fatalf("nothing open: got %q", got)
	}
	o.Add("a", "mx", t0)
	o.Add("b", "web", t0.Add(90*time.Second))
	tests := []struct {
		name string
		box  string
		at   time.Time
		want string
	}{
		{"its box is in one", "mx", t0.Add(time.Hour), "a"},
		{"the newest within the window", "db", t0.Add(100 * time.Second), "b"},
		{"too late for any", "db", t0.Add(4 * time.Minute), ""},
		{"judged a little out of order", "db", t0.Add(-30 * time.Second), "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := o.Choose(tt.box, tt.at, window); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	o.Add("a", "db", t0.Add(3*time.Minute))
	if got := o.Choose("db", t0.Add(time.Hour), window); got != "a" {
		t.Errorf("a box added later: got %q", got)
	}
	if !o.Remove("a") || o.Remove("a") || o.Choose("mx", t0, window) != "b" {
		t.Errorf("after removing a: %+v", o)
	}
}

// TestIncidentFlap: a server marked flapping is told of once, in an update
// that is a valid event; a server not in the incident is not.
func TestIncidentFlap(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "20261121-abcdef"}
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, false, naming)
	got := inc.Flap("mx1", t0.Add(time.Minute))
	want := &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 1, At: t0.Add(time.Minute), Opened: t0, Title: "mx1 (Incoming mail) is down",
		Down: []string{"mx1"}, Flapping: []string{"mx1"}, Severity: events.SeverityDegraded,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("flapping (-want +got):\n%s", d)
	}
	if err := events.New("x/updated/1", "verifier", t0, got).Validate(); err != nil {
		t.Errorf("the update is not a valid event: %v", err)
	}
	if again := inc.Flap("mx1", t0.Add(2*time.Minute)); again != nil {
		t.Errorf("told twice: %+v", again)
	}
	if other := inc.Flap("web1", t0.Add(2*time.Minute)); other != nil {
		t.Errorf("a server not in the incident: %+v", other)
	}
}

// TestIncidentSeverity: every change of a box, whoever brings it, moves the
// incident's severity, and the clock of customers hit runs only while a box
// serves nobody.
func TestIncidentSeverity(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "i", Datacentre: "dc1"}
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o1", t0, false, naming)

	// mx2 failed while mx1 was judged: its own join saw mx1 still up,
	// and only the box's judgement from both records says it is down.
	t1 := t0.Add(20 * time.Second)
	got := inc.BoxChanged(events.BoxStatus{Box: "mx", State: events.BoxDown}, t1)
	want := &events.IncidentUpdated{
		Incident: "i", Seq: 1, At: t1, Opened: t0, Title: "mx1 (Incoming mail) is down",
		Boxes: []events.BoxStatus{{Box: "mx", State: events.BoxDown}}, Down: []string{"mx1"}, Severity: events.SeverityOutage,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("the box down (-want +got):\n%s", d)
	}
	if again := inc.BoxChanged(events.BoxStatus{Box: "mx", State: events.BoxDown}, t1); again != nil {
		t.Errorf("a state known already is told again: %+v", again)
	}
	if other := inc.BoxChanged(events.BoxStatus{Box: "web", State: events.BoxDown}, t1); other != nil {
		t.Errorf("a box not in the incident is told: %+v", other)
	}
	t2 := t1.Add(10 * time.Minute)
	if u := inc.BoxChanged(events.BoxStatus{Box: "mx", State: events.BoxDegraded, Up: []string{"mx2"}}, t2).(*events.IncidentUpdated); u.Severity != events.SeverityDegraded {
		t.Errorf("outage to degraded: severity %s", u.Severity)
	}
	t3 := t2.Add(time.Minute)
	inc.BoxChanged(events.BoxStatus{Box: "mx", State: events.BoxDown}, t3)
	t4 := t3.Add(5 * time.Minute)
	r := inc.Leave("mx1", t4, events.BoxStatus{Box: "mx", State: events.BoxOperational}, false).(*events.IncidentResolved)
	if r.Severity != events.SeverityOutage || r.CustomersAffected() != 15*time.Minute {
		t.Errorf("resolved: severity %s, customers hit for %s; want outage, 15m (10m, then 5m)", r.Severity, r.CustomersAffected())
	}
	if inc.BoxChanged(events.BoxStatus{Box: "mx", State: events.BoxDown}, t4) != nil {
		t.Error("a resolved incident is updated")
	}
}

// TestIncidentWithdrawn: a server taken out of service leaves its incident
// as withdrawn, never as recovered, in the update and the resolution alike.
func TestIncidentWithdrawn(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "i"}
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o1", t0, false, naming)
	inc.Join(affected("web1", "web", t0, events.BoxDegraded, "web2"), "o2", t0, false, naming)
	u := inc.Leave("mx1", t0.Add(time.Minute), events.BoxStatus{Box: "mx", State: events.BoxOperational}, true).(*events.IncidentUpdated)
	if d := cmp.Diff([]string{"mx1"}, u.Withdrawn); d != "" || u.Recovered != nil {
		t.Errorf("withdrawn %v, recovered %v", u.Withdrawn, u.Recovered)
	}
	r := inc.Leave("web1", t0.Add(2*time.Minute), events.BoxStatus{Box: "web", State: events.BoxOperational}, false).(*events.IncidentResolved)
	if d := cmp.Diff([]string{"mx1"}, r.Withdrawn); d != "" {
		t.Errorf("resolution's withdrawn (-want +got):\n%s", d)
	}
	if r.Severity != events.SeverityDegraded || r.CustomersAffectedMS != 0 {
		t.Errorf("no box was down: severity %s, customers hit %dms", r.Severity, r.CustomersAffectedMS)
	}
}

// TestIncidentOpenedFlapping: a server already flapping as it goes down
// opens its incident saying so.
func TestIncidentOpenedFlapping(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "i"}
	o := inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o1", t0, true, naming).(*events.IncidentOpened)
	if !o.Flapping {
		t.Error("opened by a flapping server, not said")
	}
	if inc.Flap("mx1", t0) != nil {
		t.Error("told of the flapping again")
	}
}
