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

	got := inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, naming)
	want := &events.IncidentOpened{
		Incident: "20261121-abcdef", Opened: t0, Title: "mx1 (Incoming mail) is down", Datacentre: "dc1",
		Servers: []events.AffectedServer{affected("mx1", "mx", t0, events.BoxDegraded, "mx2")},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("first server (-want +got):\n%s", d)
	}
	if again := inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, naming); again != nil {
		t.Fatalf("the same outage joined twice: %+v", again)
	}

	t1 := t0.Add(20 * time.Second)
	got = inc.Join(affected("mx2", "mx", t1, events.BoxDown), "o-mx2", t1, naming)
	wantU := &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 1, At: t1, Opened: t0, Title: "2 servers of Incoming mail are down",
		Added: []events.AffectedServer{affected("mx2", "mx", t1, events.BoxDown)},
		Boxes: []events.BoxStatus{{Box: "mx", State: events.BoxDown}},
		Down:  []string{"mx1", "mx2"},
	}
	if d := cmp.Diff(wantU, got); d != "" {
		t.Fatalf("second server of the box (-want +got):\n%s", d)
	}

	t2 := t1.Add(10 * time.Second)
	got = inc.Join(affected("web1", "web", t2, events.BoxDegraded, "web2"), "o-web1", t2, naming)
	if u := got.(*events.IncidentUpdated); u.Title != "3 servers down in 2 boxes at DC One" || u.Seq != 2 || len(u.Boxes) != 1 {
		t.Fatalf("a server of another box: %+v", u)
	}

	t3 := t2.Add(time.Hour)
	got = inc.Leave("mx1", t3, events.BoxStatus{Box: "mx", State: events.BoxDegraded, Up: []string{"mx1"}})
	wantU = &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 3, At: t3, Opened: t0, Title: "3 servers down in 2 boxes at DC One",
		Recovered: []string{"mx1"},
		Boxes:     []events.BoxStatus{{Box: "mx", State: events.BoxDegraded, Up: []string{"mx1"}}},
		Down:      []string{"mx2", "web1"},
	}
	if d := cmp.Diff(wantU, got); d != "" {
		t.Fatalf("one back (-want +got):\n%s", d)
	}
	if again := inc.Leave("mx1", t3, events.BoxStatus{Box: "mx", State: events.BoxDegraded}); again != nil {
		t.Fatalf("back twice: %+v", again)
	}
	if u := inc.Leave("web1", t3, events.BoxStatus{Box: "web", State: events.BoxDegraded}).(*events.IncidentUpdated); u.Boxes != nil {
		t.Errorf("a box whose state did not change is reported: %+v", u.Boxes)
	}
	got = inc.Leave("mx2", t3.Add(time.Minute), events.BoxStatus{Box: "mx", State: events.BoxOperational})
	wantR := &events.IncidentResolved{
		Incident: "20261121-abcdef", Opened: t0, Resolved: t3.Add(time.Minute),
		Title: "3 servers down in 2 boxes at DC One", Servers: []string{"mx1", "mx2", "web1"},
	}
	if d := cmp.Diff(wantR, got); d != "" {
		t.Fatalf("the last one back (-want +got):\n%s", d)
	}
}

func TestIncidentRejoinAfterRecovery(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	inc := Incident{ID: "i"}
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded), "o1", t0, naming)
	inc.Join(affected("mx2", "mx", t0, events.BoxDown), "o2", t0, naming)
	inc.Leave("mx1", t0.Add(time.Minute), events.BoxStatus{Box: "mx", State: events.BoxDegraded})
	got := inc.Join(affected("mx1", "mx", t0.Add(2*time.Minute), events.BoxDown), "o3", t0.Add(2*time.Minute), naming)
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
	inc.Join(affected("mx1", "mx", t0, events.BoxDegraded, "mx2"), "o-mx1", t0, naming)
	got := inc.Flap("mx1", t0.Add(time.Minute))
	want := &events.IncidentUpdated{
		Incident: "20261121-abcdef", Seq: 1, At: t0.Add(time.Minute), Opened: t0, Title: "mx1 (Incoming mail) is down",
		Down: []string{"mx1"}, Flapping: []string{"mx1"},
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
