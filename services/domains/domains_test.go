package domains

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/clock"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// t0 is when the tests' clock starts.
var t0 = time.Date(2026, 12, 20, 10, 0, 0, 0, time.UTC)

// registry stands in for IANA's bootstrap file and for the registry of
// .net and .com, on loopback: it answers RDAP domain queries as a registry
// does (GET, to a client that accepts RDAP JSON; 404 with an RDAP error
// for a domain it does not hold), and can be told to fail.
type registry struct {
	srv *httptest.Server

	mu     sync.Mutex
	expiry map[string]time.Time // by domain
	status map[string]int       // answered instead, when set
	asked  map[string]int       // queries, by domain
}

func newRegistry(t *testing.T) *registry {
	t.Helper()
	r := &registry{expiry: map[string]time.Time{}, status: map[string]int{}, asked: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dns.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"version": "1.0", "publication": "2026-11-01T00:00:00Z", "description": "RDAP bootstrap file for Domain Name System registrations",
			"services": [[["net", "com"], ["%s/rdap/"]], [["org"], ["https://rdap.publicinterestregistry.org/rdap/"]]]}`, r.srv.URL)
	})
	mux.HandleFunc("GET /rdap/domain/{name}", func(w http.ResponseWriter, req *http.Request) {
		if !strings.Contains(req.Header.Get("Accept"), "application/rdap+json") {
			http.Error(w, "not acceptable", http.StatusNotAcceptable)
			return
		}
		name := strings.ToLower(req.PathValue("name"))
		r.mu.Lock()
		r.asked[name]++
		status, expiry, known := r.status[name], r.expiry[name], !r.expiry[name].IsZero()
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/rdap+json")
		switch {
		case status != 0:
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"errorCode": %d, "title": "Unavailable"}`, status)
		case !known:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"rdapConformance": ["rdap_level_0"], "errorCode": 404, "title": "Not Found"}`)
		default:
			fmt.Fprintf(w, `{"objectClassName": "domain", "ldhName": "%s", "rdapConformance": ["rdap_level_0"],
				"events": [{"eventAction": "registration", "eventDate": "2001-05-01T00:00:00Z"}, {"eventAction": "expiration", "eventDate": "%s"}]}`,
				strings.ToUpper(name), expiry.Format(time.RFC3339))
		}
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// set makes the registry say that domain expires at expiry.
func (r *registry) set(domain string, expiry time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expiry[domain], r.status[domain] = expiry, 0
}

// fail makes the registry answer status about domain.
func (r *registry) fail(domain string, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[domain] = status
}

func (r *registry) queries(domain string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.asked[domain]
}

// world is what the watcher talks to: JetStream and the registry.
type world struct {
	srv   *bustest.Server
	b     *bus.Bus
	reg   *registry
	clock *clock.Manual
	logs  *logbuf.Buffer
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{srv: bustest.Start(t), reg: newRegistry(t), clock: clock.New(t0), logs: &logbuf.Buffer{}}
	w.b = w.srv.Connect(t, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("watcher log:\n%s", w.logs)
		}
	})
	return w
}

// config is a config watching names, with 30 days' warning.
func (w *world) config(t *testing.T, names ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: web, name: Websites, servers: [{id: web1, check: "https://web1.example.net/"}]}]
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, from: alerts@example.net}}
domains:
  names: [%s]
  warn_days: 30
  rdap_bootstrap: "%s/dns.json"
`, strings.Join(names, ", "), w.reg.srv.URL), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a watcher of cfg, looking every 50ms, until the returned stop
// is called; stop cuts its connection without a goodbye, as a crash would.
func (w *world) start(t *testing.T, cfg *config.Config, m *metrics.Metrics) (stop func()) {
	t.Helper()
	b := w.srv.Connect(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(w.logs, nil)), Now: w.clock.Now, Metrics: m},
		WithEvery(50*time.Millisecond), WithLookupTimeout(5*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			b.NC.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// stored counts the messages on each incident subject of the events
// stream.
func (w *world) stored(t *testing.T) map[string]uint64 {
	t.Helper()
	ctx := context.Background()
	s, err := w.b.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("incident.>"))
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}
	}
	return info.State.Subjects
}

// event is the last event on subject.
func (w *world) event(t *testing.T, subject string) events.Event {
	t.Helper()
	ctx := context.Background()
	s, err := w.b.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	ev, err := events.Decode(subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
		t.Errorf("%s stored with message id %q, want the event's id %q", subject, got, ev.ID)
	}
	return ev
}

// record is a domain's record in the bucket; its revision 0 when none.
func (w *world) record(t *testing.T, domain string) (record, uint64) {
	t.Helper()
	kv, err := w.b.KV(context.Background(), events.BucketDomains)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	rev, err := bus.GetJSON(context.Background(), kv, Key(domain), &rec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, rev
}

// rounds waits until the registry has been asked about domain n more
// times: with one watcher running, the rounds before the last have been
// recorded in full.
func (w *world) rounds(t *testing.T, domain string, n int) {
	t.Helper()
	from := w.reg.queries(domain)
	wait.Within(t, 10*time.Second, fmt.Sprintf("%d more lookups of %s", n, domain), func() bool { return w.reg.queries(domain) >= from+n })
}

// TestWarningOpensOnceAndResolves: a domain 10 days from its expiry opens
// one warning, however many watchers look and however often, with the
// same id after a restart, even one that lost the records; renewed, the
// warning is resolved once.
func TestWarningOpensOnceAndResolves(t *testing.T) {
	w := newWorld(t)
	expiry := t0.Add(10*24*time.Hour - time.Hour) // 2026-12-30T09:00Z
	w.reg.set("example.net", expiry)
	cfg := w.config(t, "example.net")
	id := IncidentID("example.net", expiry)
	opened, resolved := events.SubjectIncident(id, "opened"), events.SubjectIncident(id, "resolved")

	stopA, stopB := w.start(t, cfg, nil), w.start(t, cfg, nil)
	wait.Within(t, 10*time.Second, "the warning", func() bool { return w.stored(t)[opened] > 0 })
	w.rounds(t, "example.net", 6)
	if diff := cmp.Diff(map[string]uint64{opened: 1}, w.stored(t)); diff != "" {
		t.Errorf("two watchers: incident messages (-want +got):\n%s", diff)
	}
	ev := w.event(t, opened)
	title := "Domain example.net expires in 10 days (2026-12-30)"
	want := &events.IncidentOpened{
		Incident: id, Opened: t0, Title: title, Severity: events.SeverityWarning,
		Servers: []events.AffectedServer{{Server: "example_net", Box: "domains", Check: "rdap://example.net", Since: t0, Reason: title}},
	}
	if diff := cmp.Diff(want, ev.Data); diff != "" {
		t.Errorf("warning (-want +got):\n%s", diff)
	}
	if ev.ID != id+"/opened" || ev.Source != Source {
		t.Errorf("event id %q from %q", ev.ID, ev.Source)
	}
	rec, _ := w.record(t, "example.net")
	if rec.Warning == nil || rec.Warning.Incident != id || rec.Pending != nil || !rec.Expiry.Equal(expiry) {
		t.Errorf("record after the warning: %+v", rec)
	}

	// A restart carries on from the record; one that lost it opens the
	// same warning again, which JetStream stores once.
	stopA()
	stopB()
	w.start(t, cfg, nil)
	w.rounds(t, "example.net", 3)
	kv, err := w.b.KV(context.Background(), events.BucketDomains)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(context.Background(), Key("example.net")); err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 10*time.Second, "the record written again", func() bool {
		rec, _ := w.record(t, "example.net")
		return rec.Warning != nil && rec.Pending == nil
	})
	if rec, _ := w.record(t, "example.net"); rec.Warning.Incident != id {
		t.Errorf("after losing its record, the warning's id is %s, want %s", rec.Warning.Incident, id)
	}
	if diff := cmp.Diff(map[string]uint64{opened: 1}, w.stored(t)); diff != "" {
		t.Errorf("after restarts: incident messages (-want +got):\n%s", diff)
	}

	// Renewed for a year: the warning is resolved, once.
	w.clock.Advance(2 * 24 * time.Hour)
	w.reg.set("example.net", expiry.AddDate(1, 0, 0))
	wait.Within(t, 10*time.Second, "the warning resolved", func() bool { return w.stored(t)[resolved] > 0 })
	w.rounds(t, "example.net", 3)
	if diff := cmp.Diff(map[string]uint64{opened: 1, resolved: 1}, w.stored(t)); diff != "" {
		t.Errorf("renewed: incident messages (-want +got):\n%s", diff)
	}
	wantResolved := &events.IncidentResolved{
		Incident: id, Opened: t0, Resolved: t0.Add(2 * 24 * time.Hour), Title: title,
		Servers: []string{"example_net"}, Severity: events.SeverityWarning,
	}
	if diff := cmp.Diff(wantResolved, w.event(t, resolved).Data); diff != "" {
		t.Errorf("resolution (-want +got):\n%s", diff)
	}
	if rec, _ := w.record(t, "example.net"); rec.Warning != nil || rec.Pending != nil || !rec.Expiry.Equal(expiry.AddDate(1, 0, 0)) {
		t.Errorf("record after renewal: %+v", rec)
	}
}

// TestLookupFailures: a registry that fails opens nothing, resolves
// nothing and keeps the record; failing on, it is logged as an error
// once it has lasted more than two rounds. A domain far from its expiry
// opens nothing either.
func TestLookupFailures(t *testing.T) {
	w := newWorld(t)
	w.reg.set("example.net", t0.Add(10*24*time.Hour))
	w.reg.set("example.com", t0.Add(200*24*time.Hour))
	w.reg.set("example-hosting.com", t0.Add(5*24*time.Hour))
	w.reg.fail("example-hosting.com", http.StatusServiceUnavailable)
	m := metrics.New()
	w.start(t, w.config(t, "example.net", "example.com", "example-hosting.com"), m)
	opened := events.SubjectIncident(IncidentID("example.net", t0.Add(10*24*time.Hour)), "opened")
	wait.Within(t, 10*time.Second, "the warning", func() bool { return w.stored(t)[opened] > 0 })

	// The registry goes down while the warning is open.
	w.reg.fail("example.net", http.StatusServiceUnavailable)
	wait.Within(t, 10*time.Second, "three failed lookups recorded", func() bool {
		rec, _ := w.record(t, "example.net")
		return rec.Failures >= 3
	})
	if strings.Contains(w.logs.String(), "level=ERROR") {
		t.Errorf("an error logged before the failures lasted two rounds:\n%s", w.logs)
	}
	if !w.logs.Has("level=WARN", `msg="domain lookup failed; its expiry is looked up again next round"`, "domain=example.net", "answered 503") {
		t.Errorf("the failed lookup is not logged as a warning with its error")
	}
	w.clock.Advance(time.Second) // longer than two rounds of 50ms
	wait.Within(t, 10*time.Second, "an error logged", func() bool { return w.logs.Has("level=ERROR", "domain=example.net", "answered 503") })
	w.rounds(t, "example.net", 2)

	if diff := cmp.Diff(map[string]uint64{opened: 1}, w.stored(t)); diff != "" {
		t.Errorf("incident messages (-want +got):\n%s", diff)
	}
	rec, _ := w.record(t, "example.net")
	if rec.Warning == nil || !rec.Expiry.Equal(t0.Add(10*24*time.Hour)) || !rec.FailingSince.Equal(t0) || !strings.Contains(rec.Error, "answered 503") {
		t.Errorf("record while failing: %+v", rec)
	}
	if rec, _ := w.record(t, "example-hosting.com"); rec.Warning != nil || rec.Failures == 0 || !rec.Expiry.IsZero() {
		t.Errorf("record of a domain never looked up: %+v", rec)
	}
	if rec, _ := w.record(t, "example.com"); rec.Warning != nil || !rec.Expiry.Equal(t0.Add(200*24*time.Hour)) || rec.Failures != 0 {
		t.Errorf("record of a domain far from expiry: %+v", rec)
	}
	if got := counter(t, m, "tocsin_domain_lookups_total", "failed"); got < 6 {
		t.Errorf("%v failed lookups counted, want at least 6", got)
	}

	// Back, with the same date: the warning stays, the failures go.
	w.reg.set("example.net", t0.Add(10*24*time.Hour))
	wait.Within(t, 10*time.Second, "the failures cleared", func() bool {
		rec, _ := w.record(t, "example.net")
		return rec.Failures == 0
	})
	if rec, _ := w.record(t, "example.net"); rec.Warning == nil {
		t.Errorf("the warning was dropped: %+v", rec)
	}
	if diff := cmp.Diff(map[string]uint64{opened: 1}, w.stored(t)); diff != "" {
		t.Errorf("incident messages (-want +got):\n%s", diff)
	}
}

// TestDomainLeavesTheConfig: a domain no longer named is no longer
// watched: its open warning is resolved, and its record goes.
func TestDomainLeavesTheConfig(t *testing.T) {
	w := newWorld(t)
	expiry := t0.Add(3 * 24 * time.Hour)
	w.reg.set("example.net", expiry)
	w.reg.set("example.com", t0.Add(300*24*time.Hour))
	stop := w.start(t, w.config(t, "example.net", "example.com"), nil)
	id := IncidentID("example.net", expiry)
	wait.Within(t, 10*time.Second, "the warning", func() bool { return w.stored(t)[events.SubjectIncident(id, "opened")] > 0 })
	stop()

	w.start(t, w.config(t, "example.com"), nil)
	wait.Within(t, 10*time.Second, "the record removed", func() bool {
		_, rev := w.record(t, "example.net")
		return rev == 0
	})
	want := map[string]uint64{events.SubjectIncident(id, "opened"): 1, events.SubjectIncident(id, "resolved"): 1}
	if diff := cmp.Diff(want, w.stored(t)); diff != "" {
		t.Errorf("incident messages (-want +got):\n%s", diff)
	}
	r := w.event(t, events.SubjectIncident(id, "resolved")).Data.(*events.IncidentResolved)
	if r.Severity != events.SeverityWarning || !cmp.Equal(r.Withdrawn, []string{"example_net"}) {
		t.Errorf("resolution: %+v", r)
	}
	if _, rev := w.record(t, "example.com"); rev == 0 {
		t.Error("the record of a domain still watched was removed")
	}
}

// TestRecordedEventIsPublished: a watcher that stopped after recording a
// warning and before publishing it left the event in the record; the next
// look at the domain publishes it, once, and does not open another.
func TestRecordedEventIsPublished(t *testing.T) {
	w := newWorld(t)
	expiry := t0.Add(20 * 24 * time.Hour)
	w.reg.set("example.net", expiry)
	id := IncidentID("example.net", expiry)
	opened := t0.Add(-time.Hour)
	title := Title("example.net", expiry, opened)
	o, err := event(id+"/opened", opened, &events.IncidentOpened{
		Incident: id, Opened: opened, Title: title, Severity: events.SeverityWarning,
		Servers: []events.AffectedServer{{Server: "example_net", Box: Box, Check: "rdap://example.net", Since: opened, Reason: title}},
	})
	if err != nil {
		t.Fatal(err)
	}
	bustest.Put(t, w.b, events.BucketDomains, Key("example.net"), record{
		Domain: "example.net", Expiry: expiry, Read: opened,
		Warning: &warning{Incident: id, Opened: opened, Title: title, Expiry: expiry}, Pending: o,
	})
	w.start(t, w.config(t, "example.net"), nil)
	subject := events.SubjectIncident(id, "opened")
	wait.Within(t, 10*time.Second, "the recorded warning published", func() bool { return w.stored(t)[subject] > 0 })
	w.rounds(t, "example.net", 3)
	if diff := cmp.Diff(map[string]uint64{subject: 1}, w.stored(t)); diff != "" {
		t.Errorf("incident messages (-want +got):\n%s", diff)
	}
	if got := w.event(t, subject).Data.(*events.IncidentOpened); !got.Opened.Equal(opened) {
		t.Errorf("published a warning opened %s, want the one recorded, opened %s", got.Opened, opened)
	}
	if rec, _ := w.record(t, "example.net"); rec.Pending != nil || rec.Warning == nil {
		t.Errorf("record after publishing: %+v", rec)
	}
}

func TestTitle(t *testing.T) {
	for _, tt := range []struct {
		expiry time.Time
		want   string
	}{
		{time.Date(2027, 1, 1, 5, 0, 0, 0, time.UTC), "Domain example.net expires in 12 days (2027-01-01)"},
		{time.Date(2026, 12, 21, 23, 0, 0, 0, time.UTC), "Domain example.net expires tomorrow (2026-12-21)"},
		{time.Date(2026, 12, 20, 10, 0, 1, 0, time.UTC), "Domain example.net expires today (2026-12-20)"},
		{t0, "Domain example.net expired on 2026-12-20"},
		{time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "Domain example.net expired on 2026-12-01"},
	} {
		if got := Title("example.net", tt.expiry, t0); got != tt.want {
			t.Errorf("Title(%s) = %q, want %q", tt.expiry, got, tt.want)
		}
	}
}

// TestIncidentID: the id depends on the domain and the day it expires
// only, and is a valid incident id.
func TestIncidentID(t *testing.T) {
	a := IncidentID("example.net", time.Date(2027, 1, 1, 5, 0, 0, 0, time.UTC))
	if b := IncidentID("example.net", time.Date(2027, 1, 1, 23, 0, 0, 0, time.FixedZone("x", 3600))); a != b {
		t.Errorf("the same day gives %s and %s", a, b)
	}
	if !strings.HasPrefix(a, "20270101-") || len(a) != 15 || !events.ValidToken(a) {
		t.Errorf("id %q", a)
	}
	for _, other := range []string{IncidentID("example.com", time.Date(2027, 1, 1, 5, 0, 0, 0, time.UTC)), IncidentID("example.net", time.Date(2028, 1, 1, 5, 0, 0, 0, time.UTC))} {
		if other == a {
			t.Errorf("another domain or day gives the same id %s", a)
		}
	}
}

// counter reads a counter of m by its one label's value.
func counter(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if l := mt.GetLabel(); len(l) == 1 && l[0].GetValue() == label {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}
