package statuspage

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// site is a status page running for real on an embedded JetStream server,
// with what the verifier and the escalator would have written.
type site struct {
	srv *bustest.Server
	b   *bus.Bus
	url string
	cfg *config.Config
}

func startSite(t *testing.T) *site {
	t.Helper()
	return startSiteWith(t, siteConfig(t), nil)
}

// startSiteWith starts a site on cfg, with tune, if not nil, changing the
// page before it runs.
func startSiteWith(t *testing.T, cfg *config.Config, tune func(*Service)) *site {
	t.Helper()
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	url, _ := runPageWith(t, cfg, srv.Connect(t, nil), "", tune)
	s := &site{srv: srv, b: b, url: url, cfg: cfg}
	// Following the state from then on: a test's first change is not
	// followed by the page's own, going live.
	wait.For(t, "the page following the monitoring system", func() bool {
		body, _ := s.get(t, "/")
		return strings.Contains(body, "this page updates itself")
	})
	return s
}

func siteConfig(t testing.TB) *config.Config {
	t.Helper()
	return siteConfigWith(t, "")
}

// siteConfigWith is siteConfig with more keys under statuspage.
func siteConfigWith(t testing.TB, statuspage string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting, status_url: "https://status.example.net"}
locations: [lon1]
roles: {mx: {label: "Incoming mail (MX)", colour: "#2e86de"}, web: {label: Web Service, colour: "#27ae60"}}
boxes:
  - {id: mx, name: Incoming mail, role: mx, servers: [{id: mx1, check: "smtp://mx1.internal.example.net:25", public_name: "MX 1"}, {id: mx2, check: "tcp://192.0.2.7:25"}]}
  - {id: web, name: Websites, role: web, servers: [{id: web1, check: "https://web1.internal.example.net/"}, {id: web2, check: "https://web2.internal.example.net/", in_service: false}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
statuspage: {admin_token_env: ADMIN, id_key_env: IDKEY`+statuspage+`}
`), func(k string) (string, bool) {
		v, ok := map[string]string{"ADMIN": "s3cr3t-admin", "IDKEY": "a-fixed-key-for-public-ids"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runPage runs a status page on its own connection until stop is called or
// the test ends, and returns its URL.
func runPage(t *testing.T, cfg *config.Config, page *bus.Bus, stateFile string) (url string, stop func()) {
	t.Helper()
	return runPageWith(t, cfg, page, stateFile, nil)
}

func runPageWith(t *testing.T, cfg *config.Config, page *bus.Bus, stateFile string, tune func(*Service)) (url string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := New(cfg, Deps{Bus: page, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, WithListener(ln), WithStateFile(stateFile))
	if tune != nil {
		tune(sp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sp.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func (s *site) put(t *testing.T, bucket, key string, v any) {
	t.Helper()
	bustest.Put(t, s.b, bucket, key, v)
}

func (s *site) get(t *testing.T, path string) (string, http.Header) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body), resp.Header
}

// export writes a static copy of the page, as `tocsin statuspage export`
// does, to a new directory, and returns the directory and its index.html.
func (s *site) export(t *testing.T) (dir string, index []byte) {
	t.Helper()
	dir = t.TempDir()
	sp := New(s.cfg, Deps{Bus: s.b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sp.Export(context.Background(), dir, time.Second); err != nil {
		t.Fatal(err)
	}
	index, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, index
}

// outage writes and announces what the verifier does when the MX box goes
// down: both servers down, the box down, an incident.
func (s *site) outage(t *testing.T, id string, at time.Time) {
	t.Helper()
	for _, srv := range []string{"mx1", "mx2"} {
		s.put(t, events.BucketServers, srv, events.ServerRecord{ID: srv, State: events.StateDown, Since: at})
	}
	s.put(t, events.BucketBoxes, "mx", events.BoxRecord{State: events.BoxDown, Since: at})
	ctx := context.Background()
	for _, ev := range []events.Event{
		events.New("mx/state/9", "verifier", at, &events.BoxStateChanged{Box: "mx", From: events.BoxOperational, To: events.BoxDown, Since: at}),
		events.New(id+"/opened", "verifier", at, &events.IncidentOpened{Incident: id, Opened: at, Title: "2 servers of Incoming mail are down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "smtp://mx1.internal.example.net:25", Since: at, BoxState: events.BoxDown}}}),
	} {
		if err := s.b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStatuspageAPI(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC().Add(-time.Hour)
	for _, srv := range []string{"mx1", "mx2", "web1"} {
		s.put(t, events.BucketServers, srv, events.ServerRecord{ID: srv, State: events.StateUp, Since: now.Add(-37 * 24 * time.Hour)})
	}
	s.put(t, events.BucketBoxes, "mx", events.BoxRecord{State: events.BoxOperational, Since: now})
	id := now.Format("20060102") + "-apiapi"
	s.outage(t, id, now)
	s.put(t, events.BucketMaintenance, "kernel", events.MaintenanceSet{Maintenance: "kernel", Servers: []string{"web1"},
		From: time.Now().Add(time.Hour), Until: time.Now().Add(2 * time.Hour), Reason: "Kernel upgrade", Public: true, Boxes: []string{"web"}})
	s.put(t, events.BucketMaintenance, "internal", events.MaintenanceSet{Maintenance: "internal", Servers: []string{"mx1"},
		From: time.Now().Add(time.Hour), Until: time.Now().Add(2 * time.Hour), Reason: "Quiet swap"})

	var summary struct {
		Page struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			UpdatedAt string `json:"updated_at"`
		} `json:"page"`
		Components []map[string]any `json:"components"`
		Incidents  []struct {
			ID, Name, Status, Impact string
			IncidentUpdates          []map[string]any `json:"incident_updates"`
		} `json:"incidents"`
		ScheduledMaintenances []map[string]any `json:"scheduled_maintenances"`
		Status                struct{ Indicator, Description string }
	}
	wait.For(t, "the outage on the API", func() bool {
		body, _ := s.get(t, "/api/v2/summary.json")
		summary.Incidents = nil
		_ = json.Unmarshal([]byte(body), &summary)
		if len(summary.Incidents) != 1 || summary.Status.Indicator != "major" || len(summary.ScheduledMaintenances) != 1 {
			return false
		}
		// And every server's own state, which arrives on its own.
		down := 0
		for _, c := range summary.Components {
			if n := c["name"]; (n == "MX 1" || n == "Incoming mail 2") && c["status"] == "major_outage" {
				down++
			}
		}
		return down == 2
	})
	body, hdr := s.get(t, "/api/v2/summary.json")
	if hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Error("the API is not readable from other origins")
	}
	if summary.Status.Description != "Partial System Outage" || summary.Incidents[0].Status != "investigating" || summary.Incidents[0].Impact != "major" {
		t.Errorf("status %+v, incident %+v", summary.Status, summary.Incidents[0])
	}
	byName := map[string]map[string]any{}
	for _, c := range summary.Components {
		byName[c["name"].(string)] = c
		for _, field := range []string{"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase", "start_date", "group_id", "page_id", "group", "only_show_if_degraded"} {
			if _, ok := c[field]; !ok {
				t.Errorf("component %v lacks %q", c["name"], field)
			}
		}
	}
	for name, want := range map[string]string{"MX 1": "major_outage", "Incoming mail 2": "major_outage", "Incoming mail": "major_outage", "Websites 1": "operational", "Websites 2": "partial_outage", "Websites": "operational"} {
		if c := byName[name]; c == nil || c["status"] != want {
			t.Errorf("component %q: %v, want status %s", name, c, want)
		}
	}
	if g := byName["Incoming mail"]; g["group"] != true || len(g["components"].([]any)) != 2 {
		t.Errorf("box as a group: %v", g)
	}
	for _, secret := range []string{"mx1", "mx2", "web1", "internal.example.net", "192.0.2.7", "Quiet swap"} {
		if strings.Contains(body, secret) {
			t.Errorf("summary.json shows %q", secret)
		}
	}
	for _, path := range []string{"status.json", "components.json", "incidents.json", "incidents/unresolved.json", "scheduled-maintenances.json", "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json"} {
		body, _ := s.get(t, "/api/v2/"+path)
		var doc map[string]any
		if err := json.Unmarshal([]byte(body), &doc); err != nil || doc["page"] == nil {
			t.Errorf("%s: %v %s", path, err, body)
		}
	}
	up, _ := s.get(t, "/api/v2/scheduled-maintenances/upcoming.json")
	if !strings.Contains(up, `"status":"scheduled"`) || !strings.Contains(up, "Kernel upgrade: Websites") || !strings.Contains(up, `"scheduled_for"`) {
		t.Errorf("upcoming maintenance: %s", up)
	}

	// A staff update through the admin API, then the resolution.
	req, _ := http.NewRequest("POST", s.url+"/api/admin/incidents/"+id+"/updates", strings.NewReader(`{"status":"identified","message":"A failed switch; replacing it.","by":"Alice"}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an update without the token: %v %v", resp.StatusCode, err)
	}
	req, _ = http.NewRequest("POST", s.url+"/api/admin/incidents/"+id+"/updates", strings.NewReader(`{"status":"identified","message":"A failed switch; replacing it.","by":"Alice"}`))
	req.Header.Set("Authorization", "Bearer s3cr3t-admin")
	ikv, _ := s.b.KV(context.Background(), events.BucketIncidents)
	ikv.Put(context.Background(), id, []byte(`{"id":"`+id+`"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("an update with the token: %v %v", resp.StatusCode, err)
	}
	s.b.Publish(context.Background(), events.New(id+"/resolved", "verifier", now.Add(30*time.Minute), &events.IncidentResolved{
		Incident: id, Opened: now, Resolved: now.Add(30 * time.Minute), Title: "2 servers of Incoming mail are down", Servers: []string{"mx1", "mx2"}}))
	var list struct {
		Incidents []struct {
			Status          string
			ResolvedAt      *string          `json:"resolved_at"`
			IncidentUpdates []map[string]any `json:"incident_updates"`
		}
	}
	wait.For(t, "the resolution", func() bool {
		body, _ := s.get(t, "/api/v2/incidents.json")
		_ = json.Unmarshal([]byte(body), &list)
		return len(list.Incidents) == 1 && list.Incidents[0].Status == "resolved" && len(list.Incidents[0].IncidentUpdates) == 3
	})
	if u := list.Incidents[0].IncidentUpdates; u[1]["status"] != "identified" || u[1]["body"] != "A failed switch; replacing it." || list.Incidents[0].ResolvedAt == nil {
		t.Errorf("timeline %v", u)
	}
	if unresolved, _ := s.get(t, "/api/v2/incidents/unresolved.json"); strings.Contains(unresolved, id) {
		t.Error("a resolved incident listed as unresolved")
	}

	// The Atom feed, read back by a feed parser.
	feed, _ := s.get(t, "/feed.atom")
	var parsed struct {
		Title   string `xml:"title"`
		Entries []struct {
			ID      string `xml:"id"`
			Title   string `xml:"title"`
			Updated string `xml:"updated"`
			Content string `xml:"content"`
		} `xml:"entry"`
	}
	if err := xml.Unmarshal([]byte(feed), &parsed); err != nil || len(parsed.Entries) != 1 {
		t.Fatalf("feed: %v\n%s", err, feed)
	}
	if e := parsed.Entries[0]; !strings.Contains(e.Title, "Problem with Incoming mail") || !strings.Contains(e.Content, "A failed switch") {
		t.Errorf("feed entry %+v", e)
	}
	if _, err := time.Parse(time.RFC3339, parsed.Entries[0].Updated); err != nil {
		t.Errorf("entry updated %q is not RFC 3339", parsed.Entries[0].Updated)
	}
}

// TestStaffResolution: staff resolving an incident Tocsin still holds open
// resolve it on the whole page, as Statuspage does: a resolved_at, out of
// the unresolved list, shown as past.
func TestStaffResolution(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC().Add(-time.Hour)
	id := now.Format("20060102") + "-staff1"
	s.outage(t, id, now)
	s.put(t, events.BucketIncidents, id, map[string]any{"id": id})
	wait.For(t, "the outage on the API", func() bool {
		body, _ := s.get(t, "/api/v2/incidents/unresolved.json")
		return strings.Contains(body, "Problem with Incoming mail")
	})
	req, _ := http.NewRequest("POST", s.url+"/api/admin/incidents/"+id+"/updates", strings.NewReader(`{"status":"resolved","message":"Mail is flowing again.","by":"Alice"}`))
	req.Header.Set("Authorization", "Bearer s3cr3t-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var note events.IncidentNote
	if err := json.NewDecoder(resp.Body).Decode(&note); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("the staff update: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()

	type incidents struct {
		Incidents []struct {
			ID, Status string
			ResolvedAt *string `json:"resolved_at"`
		}
	}
	var all incidents
	wait.For(t, "the staff update on the API", func() bool {
		body, _ := s.get(t, "/api/v2/incidents.json")
		all = incidents{}
		_ = json.Unmarshal([]byte(body), &all)
		return len(all.Incidents) == 1 && all.Incidents[0].Status == "resolved"
	})
	if got, want := all.Incidents[0].ResolvedAt, stamp(note.At); got == nil || *got != want {
		t.Errorf("resolved_at %v, want %s", got, want)
	}
	for _, path := range []string{"/api/v2/incidents/unresolved.json", "/api/v2/summary.json"} {
		body, _ := s.get(t, path)
		var doc incidents
		if err := json.Unmarshal([]byte(body), &doc); err != nil || len(doc.Incidents) != 0 {
			t.Errorf("%s lists the resolved incident: %s", path, body)
		}
	}
	if page, _ := s.get(t, "/"); !strings.Contains(page, `<article class="incident resolved">`) {
		t.Errorf("the page shows the resolved incident as current:\n%s", page)
	}
}

func TestResolvedAt(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	note := func(seq int64, status string, m int) events.IncidentNote {
		return events.IncidentNote{Seq: seq, Status: status, At: at(m)}
	}
	tocsin := &events.IncidentResolved{Resolved: at(30)}
	for _, c := range []struct {
		name     string
		notes    []events.IncidentNote
		resolved *events.IncidentResolved
		want     time.Time
	}{
		{"open", []events.IncidentNote{note(1, events.NoteIdentified, 5)}, nil, time.Time{}},
		{"resolved by Tocsin", []events.IncidentNote{note(1, events.NoteIdentified, 5)}, tocsin, at(30)},
		{"resolved by staff", []events.IncidentNote{note(1, events.NoteIdentified, 5), note(2, events.NoteResolved, 10)}, nil, at(10)},
		{"resolved by staff, then by Tocsin", []events.IncidentNote{note(1, events.NoteResolved, 10), note(2, events.NoteResolved, 20)}, tocsin, at(10)},
		{"resolved by Tocsin, then said so by staff", []events.IncidentNote{note(1, events.NoteResolved, 40)}, tocsin, at(30)},
		{"reopened by staff", []events.IncidentNote{note(1, events.NoteResolved, 10), note(2, events.NoteMonitoring, 20)}, nil, time.Time{}},
		{"reopened by staff, resolved by Tocsin", []events.IncidentNote{note(1, events.NoteResolved, 10), note(2, events.NoteMonitoring, 20)}, tocsin, at(30)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := resolvedAt(&incident.View{Notes: c.notes, Resolved: c.resolved}); !got.Equal(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestDegradedStatus: a box with a server down and the service still
// available is no outage: the page's status stays operational, while the
// components show each part as it is.
func TestDegradedStatus(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC()
	s.put(t, events.BucketServers, "mx1", events.ServerRecord{ID: "mx1", State: events.StateDown, Since: now})
	s.put(t, events.BucketServers, "mx2", events.ServerRecord{ID: "mx2", State: events.StateUp, Since: now.Add(-time.Hour)})
	s.put(t, events.BucketBoxes, "mx", events.BoxRecord{State: events.BoxDegraded, Since: now})
	var summary struct {
		Components []struct{ Name, Status string }
		Status     struct{ Indicator, Description string }
	}
	wait.For(t, "the degraded box on the API", func() bool {
		body, _ := s.get(t, "/api/v2/summary.json")
		summary.Components = nil
		_ = json.Unmarshal([]byte(body), &summary)
		for _, c := range summary.Components {
			if c.Name == "Incoming mail" {
				return c.Status == "degraded_performance"
			}
		}
		return false
	})
	if got, want := summary.Status, (struct{ Indicator, Description string }{"none", "All Systems Operational"}); got != want {
		t.Errorf("status with a box degraded: %+v, want %+v", got, want)
	}
	if page, _ := s.get(t, "/"); !strings.Contains(page, `class="overall none"`) || !strings.Contains(page, "All Systems Operational") {
		t.Errorf("the page's status with a box degraded:\n%s", page)
	}
}

// degradedThenDown is an incident that starts with the MX box degraded
// (mx1 down, mx2 answering), takes the web box down, and goes on once the
// web box is back, the MX box still degraded.
func degradedThenDown(id string, at time.Time) []events.Event {
	mx1 := events.AffectedServer{Server: "mx1", Box: "mx", Check: "smtp://mx1.internal.example.net:25", Since: at, BoxState: events.BoxDegraded, StillUp: []string{"mx2"}}
	web1 := events.AffectedServer{Server: "web1", Box: "web", Check: "https://web1.internal.example.net/", Since: at.Add(time.Minute), BoxState: events.BoxDown}
	return []events.Event{
		events.New(id+"/opened", "verifier", at, &events.IncidentOpened{Incident: id, Opened: at, Title: "mx1 is down", Servers: []events.AffectedServer{mx1}}),
		events.New(id+"/updated/1", "verifier", at.Add(time.Minute), &events.IncidentUpdated{Incident: id, Seq: 1, At: at.Add(time.Minute), Opened: at,
			Title: "2 servers down in 2 boxes", Added: []events.AffectedServer{web1}, Boxes: []events.BoxStatus{{Box: "web", State: events.BoxDown}}, Down: []string{"mx1", "web1"}}),
		events.New(id+"/updated/2", "verifier", at.Add(5*time.Minute), &events.IncidentUpdated{Incident: id, Seq: 2, At: at.Add(5 * time.Minute), Opened: at,
			Title: "2 servers down in 2 boxes", Recovered: []string{"web1"}, Boxes: []events.BoxStatus{{Box: "web", State: events.BoxOperational}}, Down: []string{"mx1"}}),
	}
}

// TestIncidentNamesBoxesDown: a public incident names and lists the boxes
// that were down during it, not those only degraded, and goes on naming
// them once they are back.
func TestIncidentNamesBoxesDown(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC().Add(-time.Hour)
	id := now.Format("20060102") + "-mixed1"
	for _, ev := range append(degradedThenDown(id, now),
		events.New(id+"/note/1", "tocsin", now.Add(6*time.Minute), &events.IncidentNote{Incident: id, Seq: 1, Status: events.NoteMonitoring, Message: "Websites are back.", By: "Alice", At: now.Add(6 * time.Minute)})) {
		if err := s.b.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Incidents []struct {
			Name            string
			Components      []struct{ Name string }
			IncidentUpdates []struct{ Status, Body string } `json:"incident_updates"`
		}
	}
	wait.For(t, "the incident and its last update", func() bool {
		body, _ := s.get(t, "/api/v2/incidents/unresolved.json")
		list.Incidents = nil
		_ = json.Unmarshal([]byte(body), &list)
		return len(list.Incidents) == 1 && list.Incidents[0].IncidentUpdates[0].Status == events.NoteMonitoring
	})
	inc := list.Incidents[0]
	if got, want := inc.Name, "Problem with Websites"; got != want {
		t.Errorf("name %q, want %q", got, want)
	}
	if len(inc.Components) != 1 || inc.Components[0].Name != "Websites" {
		t.Errorf("components %+v, want the web box alone", inc.Components)
	}
	if u := inc.IncidentUpdates[len(inc.IncidentUpdates)-1]; u.Body != "We are investigating a problem with Websites." {
		t.Errorf("first update %q", u.Body)
	}
	if page, _ := s.get(t, "/"); !strings.Contains(page, "<h3>Problem with Websites <span") {
		t.Errorf("the page does not name the incident by the box down:\n%s", page)
	}
}

// TestSavedIncidentNamesBoxesDown: the boxes that were down outlast a
// restart from the saved state.
func TestSavedIncidentNamesBoxesDown(t *testing.T) {
	cfg := siteConfig(t)
	now := time.Now().UTC()
	p := newPage(cfg, time.Now)
	for _, ev := range degradedThenDown("20250301-saved2", now) {
		p.incidentEvent(ev)
	}
	b, err := json.Marshal(p.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		t.Fatal(err)
	}
	restored := newPage(cfg, time.Now)
	restored.restore(snap)
	for name, p := range map[string]*page{"before": p, "after a restart": restored} {
		incs := p.publicIncidents()
		if len(incs) != 1 {
			t.Fatalf("%s: %d public incidents", name, len(incs))
		}
		if a := p.apiIncident(incs[0]); a.Name != "Problem with Websites" || len(a.Components) != 1 || a.Components[0].Name != "Websites" {
			t.Errorf("%s: %q on %+v, want the web box alone", name, a.Name, a.Components)
		}
	}
}

// TestOldIncidentsForgotten: incidents resolved longer ago than the page's
// history are dropped, as events come and from the saved state; those
// resolved since, and those still open however old, are kept.
func TestOldIncidentsForgotten(t *testing.T) {
	cfg := siteConfig(t)
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(days int) time.Time { return now.Add(-time.Duration(days) * 24 * time.Hour) }
	incidentEvents := func(id string, opened, resolved time.Time) []events.Event {
		evs := []events.Event{events.New(id+"/opened", "verifier", opened, &events.IncidentOpened{Incident: id, Opened: opened, Title: "2 servers of Incoming mail are down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "smtp://mx1.internal.example.net:25", Since: opened, BoxState: events.BoxDown}}})}
		if !resolved.IsZero() {
			evs = append(evs, events.New(id+"/resolved", "verifier", resolved, &events.IncidentResolved{Incident: id, Opened: opened, Resolved: resolved, Title: "2 servers of Incoming mail are down", Servers: []string{"mx1"}}))
		}
		return evs
	}
	var all []events.Event
	all = append(all, incidentEvents("old", ago(100), ago(95))...)
	all = append(all, incidentEvents("open", ago(120), time.Time{})...)
	all = append(all, incidentEvents("recent", ago(10), ago(9))...)
	ids := func(p *page) []string { return slices.Sorted(maps.Keys(p.incidents)) }
	want := []string{"open", "recent"}

	p := newPage(cfg, func() time.Time { return now })
	for _, ev := range all {
		p.incidentEvent(ev)
	}
	if diff := cmp.Diff(ids(p), want); diff != "" {
		t.Errorf("incidents kept as events come (-got +want):\n%s", diff)
	}

	saved := newPage(cfg, func() time.Time { return ago(50) }) // saved when the old one was recent
	for _, ev := range all[:3] {
		saved.incidentEvent(ev)
	}
	restored := newPage(cfg, func() time.Time { return now })
	restored.restore(saved.snapshot())
	if diff := cmp.Diff(ids(restored), []string{"open"}); diff != "" {
		t.Errorf("incidents kept from the saved state (-got +want):\n%s", diff)
	}
}

// TestPageWithoutJavaScript: the HTML alone shows the boxes and their dots,
// with words besides colours, and nothing internal.
func TestPageWithoutJavaScript(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC()
	// Up for 37 days, through a false alarm three minutes ago.
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: now.Add(-3 * time.Minute), UpSince: now.Add(-37 * 24 * time.Hour)})
	s.outage(t, now.Format("20060102")+"-nojs01", now)
	var page string
	wait.For(t, "the outage on the page", func() bool {
		page, _ = s.get(t, "/")
		// The incident and the box's state come by different ways.
		return strings.Contains(page, "Problem with Incoming mail") && strings.Contains(page, "Partial System Outage")
	})
	for _, want := range []string{"Example Hosting status", "Partial System Outage", "Incoming mail (MX)", "MX 1", "Incoming mail 2",
		`data-dot="unavailable"`, "Unavailable", "Websites 1", "Online", "37 days", "Not yet in service", "Last updated", "90 days ago"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, secret := range []string{">mx1<", "mx2", "web1<", "internal.example.net", "192.0.2.7"} {
		if strings.Contains(page, secret) {
			t.Errorf("page shows %q", secret)
		}
	}
}

// TestLiveChangesAndLostLink: a change reaches an SSE client at once; when
// the page loses its link it keeps serving the last state and says since
// when.
func TestLiveChangesAndLostLink(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC()
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: now})
	wait.For(t, "web1 online", func() bool {
		page, _ := s.get(t, "/")
		return strings.Contains(page, `data-dot="online"`)
	})
	resp, err := http.Get(s.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	got := make(chan string, 10)
	connected := make(chan struct{})
	go func() {
		for lines.Scan() {
			switch l := lines.Text(); {
			case l == ": connected":
				close(connected) // the stream follows the page from here
			case strings.HasPrefix(l, "data: "):
				got <- strings.TrimPrefix(l, "data: ")
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(wait.Default):
		t.Fatal("the event stream never said it was connected")
	}
	sent := time.Now()
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: time.Now()})
	for done := false; !done; {
		select {
		case d := <-got:
			if !strings.Contains(d, `"type":"server"`) || !strings.Contains(d, `"status":"unavailable"`) {
				continue // the link coming up, web1's first state arriving late, and such
			}
			if !strings.Contains(d, componentID("server", "web1")) {
				t.Errorf("event %s", d)
			}
			t.Logf("change reached the client in %s", time.Since(sent).Round(time.Millisecond))
			done = true
		case <-time.After(5 * time.Second):
			t.Fatal("no event for the change")
		}
	}

	s.srv.NS.Shutdown() // the main site's JetStream server is gone
	wait.For(t, "the page to say its link is lost", func() bool {
		page, _ := s.get(t, "/")
		return strings.Contains(page, "lost its link to the monitoring system")
	})
	page, _ := s.get(t, "/")
	if !strings.Contains(page, `data-dot="unavailable"`) {
		t.Error("the last known state is gone")
	}
	if body, _ := s.get(t, "/api/v2/status.json"); !strings.Contains(body, `"indicator"`) {
		t.Errorf("API while the link is lost: %s", body)
	}
}

func TestBannerScript(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	js, hdr := s.get(t, "/banner.js")
	if !strings.Contains(hdr.Get("Content-Type"), "javascript") || !strings.Contains(js, "/banner.json") || !strings.Contains(js, "try {") {
		t.Errorf("banner.js: %s %s", hdr.Get("Content-Type"), js[:80])
	}
	body, _ := s.get(t, "/banner.json")
	if !strings.Contains(body, `"on":false`) {
		t.Errorf("banner with no outage: %s", body)
	}
	s.put(t, events.BucketBanner, events.BannerKey, events.Banner{On: true, Message: "We are experiencing problems with Incoming mail.", Link: "https://status.example.net", Since: time.Now()})
	wait.For(t, "the banner", func() bool {
		body, hdr := s.get(t, "/banner.json")
		return strings.Contains(body, `"on":true`) && strings.Contains(body, "Incoming mail") && hdr.Get("Access-Control-Allow-Origin") == "*"
	})

}

// TestExport: the static copy has the page without its script, every API
// document as valid JSON, the feed and the banner.
func TestExport(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC()
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: now.Add(-48 * time.Hour)})
	s.outage(t, now.Format("20060102")+"-export", now)
	dir, index := s.export(t)
	if !strings.Contains(string(index), "Problem with Incoming mail") || strings.Contains(string(index), "EventSource") || strings.Contains(string(index), "lost its link") {
		t.Errorf("index.html:\n%s", index)
	}
	// A static copy changes only when exported again: it says when it was
	// last updated, and not that it updates itself.
	if !strings.Contains(string(index), "Last updated") || strings.Contains(string(index), "updates itself") {
		t.Errorf("index.html's footer does not fit a static copy:\n%s", index)
	}
	for _, name := range []string{"api/v2/summary.json", "api/v2/status.json", "api/v2/components.json", "api/v2/incidents.json", "api/v2/incidents/unresolved.json", "api/v2/scheduled-maintenances.json", "api/v2/scheduled-maintenances/upcoming.json", "api/v2/scheduled-maintenances/active.json", "banner.json"} {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil || !json.Valid(b) {
			t.Errorf("%s: %v %s", name, err, b)
		}
	}
	for _, name := range []string{"feed.atom", "banner.js"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
}

// A page restarted while the main site is out of reach serves the last
// state it saved, says how old it is, and catches up once the main site is
// back.
func TestRestartWhileCutOff(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(t)
	dir := t.TempDir()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Open: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := ns.Addr().String()
	s := &site{srv: &bustest.Server{NS: ns, URL: ns.ClientURL()}, cfg: cfg}
	s.b = s.srv.Connect(t, nil)
	state := filepath.Join(t.TempDir(), "statuspage.json")
	url, stop := runPage(t, cfg, s.srv.Connect(t, nil), state)
	s.url = url
	known := time.Now().UTC().Truncate(time.Second)
	id := known.Format("20060102") + "-saved1"
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: known.Add(-37 * 24 * time.Hour)})
	s.outage(t, id, known)
	var before struct{ Incidents []struct{ ID string } }
	wait.For(t, "the outage on the page", func() bool {
		body, _ := s.get(t, "/api/v2/incidents/unresolved.json")
		return json.Unmarshal([]byte(body), &before) == nil && len(before.Incidents) == 1
	})
	stop() // saves on the way out
	ns.Shutdown()
	ns.WaitForShutdown()

	// Restarted with the main site gone: the connection keeps trying.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cut, err := bus.Connect("nats://"+addr, nil, "page", log, nats.RetryOnFailedConnect(true), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cut.NC.Close)
	s.url, _ = runPage(t, cfg, cut, state)
	wait.For(t, "the restarted page to answer", func() bool {
		resp, err := http.Get(s.url + "/api/v2/status.json")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	body, _ := s.get(t, "/api/v2/summary.json")
	var summary struct {
		Status     struct{ Indicator string }
		Components []struct{ Name, Status string }
		Incidents  []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(body), &summary); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, c := range summary.Components {
		status[c.Name] = c.Status
	}
	if summary.Status.Indicator != "major" || status["Incoming mail"] != "major_outage" || status["Websites 1"] != "operational" ||
		len(summary.Incidents) != 1 || summary.Incidents[0].ID != before.Incidents[0].ID {
		t.Errorf("summary.json after a restart while cut off: %s, want the saved outage", body)
	}
	page, _ := s.get(t, "/")
	if !strings.Contains(page, "lost its link to the monitoring system") || !strings.Contains(page, `for <span data-role="for">37 days`) {
		t.Errorf("the page after a restart while cut off does not show the saved state and its age:\n%s", page)
	}

	// The main site returns, with a change made meanwhile.
	ns2, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: addr, Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns2.Shutdown(); ns2.WaitForShutdown() })
	s.srv = &bustest.Server{NS: ns2, URL: ns2.ClientURL()}
	s.b = s.srv.Connect(t, nil)
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: time.Now()})
	wait.Within(t, 30*time.Second, "the page to catch up once the main site is back", func() bool {
		page, _ := s.get(t, "/")
		body, _ := s.get(t, "/api/v2/summary.json")
		return !strings.Contains(page, "lost its link") && strings.Contains(body, `"name":"Websites 1","status":"major_outage"`)
	})
}

// TestInternalMaintenanceIsNotSent: a window that leaves every box
// available reaches no open page; a public one, and its end, do.
func TestInternalMaintenanceIsNotSent(t *testing.T) {
	now := time.Now().UTC()
	p := newPage(siteConfig(t), time.Now)
	ch := p.subscribe()
	defer p.unsubscribe(ch)
	internal := &events.MaintenanceSet{Maintenance: "m1", Servers: []string{"mx1"}, From: now, Until: now.Add(time.Hour), Reason: "disk swap"}
	public := &events.MaintenanceSet{Maintenance: "m2", Servers: []string{"mx1", "mx2"}, Boxes: []string{"mx"}, Public: true, From: now, Until: now.Add(time.Hour), Reason: "network work"}
	p.setMaintenance("m1", internal)
	p.setMaintenance("m1", nil)
	if len(ch) != 0 {
		t.Errorf("an internal window and its end: %d messages to the open pages, want none", len(ch))
	}
	p.setMaintenance("m2", public)
	p.setMaintenance("m2", nil)
	if len(ch) != 2 {
		t.Errorf("a public window and its end: %d messages, want 2", len(ch))
	}
}
