package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/admintest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/services/verifier"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1, ams1]
checks: {interval: 1m, verify: {locations: 1, quorum: 1}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://127.0.0.1:25"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// answers waits, for at most a minute, until path answers code, and
// returns what it said.
func answers(t *testing.T, base, path string, code int) string {
	t.Helper()
	var body string
	wait.Within(t, time.Minute, fmt.Sprintf("%s to answer %d", path, code), func() bool {
		var got int
		got, body = admintest.Get(t, base+path)
		return got == code
	})
	return body
}

// TestReadiness: the process is not ready until its verifier has set up
// its consumer, is ready then, and is not ready again once the NATS
// server is gone; it is healthy throughout.
func TestReadiness(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	m := metrics.New()
	v := verifier.New(testConfig(t), verifier.Deps{Bus: b, Log: discard(), Metrics: m})
	hs := httptest.NewServer(admin.New(m, b.NC, []string{"verifier"}, discard()).Handler())
	defer hs.Close()

	if code, _ := admintest.Get(t, hs.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before the verifier runs: %d, want 200", code)
	}
	code, body := admintest.Get(t, hs.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "verifier: consumer verifier not set up") {
		t.Errorf("/readyz before the verifier runs: %d %q, want 503 saying the verifier's consumer is missing", code, body)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- v.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("the verifier did not stop")
		}
	}()
	if body := answers(t, hs.URL, "/readyz", http.StatusOK); strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz when ready says %q", body)
	}
	fams := admintest.Metrics(t, hs.URL)
	if got := admintest.Sample(fams, "tocsin_service_ready", "service", "verifier"); got != 1 {
		t.Errorf("tocsin_service_ready{service=verifier} = %v, want 1", got)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("the Go and process collectors are missing from /metrics")
	}

	srv.NS.Shutdown()
	body = answers(t, hs.URL, "/readyz", http.StatusServiceUnavailable)
	if !strings.Contains(body, "nats: ") {
		t.Errorf("/readyz without NATS says %q, want a line about nats", body)
	}
	if code, _ := admintest.Get(t, hs.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz without NATS: %d, want 200 (the process still runs)", code)
	}
}

// TestServe: the admin server serves on its listener until its context
// ends, then stops; told the process is stopping, it is no longer ready.
func TestServe(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	m := metrics.New()
	m.Expect("statuspage")
	m.Started("statuspage")
	srv := admin.New(m, b.NC, []string{"statuspage"}, discard())
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	base := "http://" + ln.Addr().String()
	if code, body := admintest.Get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %q, want 200", code, body)
	}
	srv.Stopping()
	if code, body := admintest.Get(t, base+"/readyz"); code != http.StatusServiceUnavailable || strings.TrimSpace(body) != "shutting down" {
		t.Errorf("/readyz while stopping: %d %q, want 503 shutting down", code, body)
	}
	if code, _ := admintest.Get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while stopping: %d, want 200", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the admin server did not stop")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("the admin server still answers after it stopped")
	}
}

// TestMicro: every instance registered is found by micro's discovery with
// what it is, where and where its admin server is, and its status endpoint
// answers for it; stopped, it is no longer found.
func TestMicro(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	m := metrics.New()
	m.Expect("verifier", "verifier") // never set up: not ready
	m.Expect("prober@lon1")          // no consumer needed, started: ready
	m.Started("prober@lon1")
	started := time.Date(2026, 11, 21, 2, 14, 0, 0, time.UTC)
	var svcs []micro.Service
	for _, in := range []admin.Instance{
		{Service: "verifier", Version: "v1.4.0", Admin: "127.0.0.1:9464", Started: started},
		{Service: "prober", Location: "lon1", Version: "v1.4.0", Admin: "127.0.0.1:9464", Started: started},
		{Service: "prober", Location: "ams1", Version: "v1.4.0", Started: started},
	} {
		s, err := admin.Register(b.NC, in, m)
		if err != nil {
			t.Fatal(err)
		}
		svcs = append(svcs, s)
	}

	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pings := admintest.Discover[micro.Ping](t, nc, "$SRV.PING", 3)
	var found []string
	for _, p := range pings {
		found = append(found, p.Name+" "+p.Metadata["service"]+" "+p.Metadata["location"]+" "+p.Metadata["admin"]+" "+p.Version)
	}
	slices.Sort(found)
	want := []string{
		"tocsin-prober prober ams1  1.4.0",
		"tocsin-prober prober lon1 127.0.0.1:9464 1.4.0",
		"tocsin-verifier verifier  127.0.0.1:9464 1.4.0",
	}
	if !slices.Equal(found, want) {
		t.Errorf("$SRV.PING found\n%q\nwant\n%q", found, want)
	}

	infos := admintest.Discover[micro.Info](t, nc, "$SRV.INFO.tocsin-verifier", 1)
	if eps := infos[0].Endpoints; len(eps) != 1 || eps[0].Name != "status" || eps[0].Subject != "tocsin.status.verifier" || eps[0].QueueGroup != "" {
		t.Errorf("verifier endpoints %+v, want status on tocsin.status.verifier, answered by every instance (no queue group)", eps)
	}

	st := admintest.Status(t, nc, "verifier")
	want0 := admin.Status{ID: infos[0].ID, Service: "verifier", Ready: false, Started: "2026-11-21T02:14:00Z", Detail: "verifier: consumer verifier not set up"}
	if st != want0 {
		t.Errorf("verifier status %+v, want %+v", st, want0)
	}
	// The raw answer has exactly the fields `tocsin status` reads.
	msg, err := nc.Request("tocsin.status.verifier", nil, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(msg.Data, &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"detail", "id", "location", "ready", "service", "started"}; !slices.Equal(keys, want) {
		t.Errorf("status fields %v, want %v", keys, want)
	}

	// The two probers share the subject and both answer, each for itself,
	// under the id discovery knows it by.
	ids := map[string]string{} // location → id
	for _, p := range pings {
		ids[p.Metadata["location"]] = p.ID
	}
	var answered []string
	for _, st := range admintest.Discover[admin.Status](t, nc, admin.StatusSubject("prober"), 2) {
		if st.Service != "prober" || st.ID != ids[st.Location] || st.Ready != (st.Location == "lon1") {
			t.Errorf("prober status %+v; ids by location %v", st, ids)
		}
		answered = append(answered, st.Location)
	}
	if slices.Sort(answered); !slices.Equal(answered, []string{"ams1", "lon1"}) {
		t.Errorf("probers answering: %v, want ams1 and lon1", answered)
	}

	for _, s := range svcs[:1] {
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	// Stop drains its subscriptions: gone once the server has them back.
	wait.Within(t, 30*time.Second, "a stopped verifier gone from discovery", func() bool {
		pings := admintest.Discover[micro.Ping](t, nc, "$SRV.PING", 0)
		return !slices.ContainsFunc(pings, func(p micro.Ping) bool { return p.Name == "tocsin-verifier" })
	})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestAsk: answers to several subjects are gathered in one inbox until as
// many as wanted have come; a subject nobody listens on is no answer, and
// when nobody listens at all Ask does not wait out its time.
func TestAsk(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	nc, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i, subject := range []string{"test.one", "test.one", "test.two"} {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond([]byte(fmt.Sprint(i))) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	msgs, err := admin.Ask(ctx, nc, []string{"test.one", "test.nobody", "test.two"}, time.Minute, 3)
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Data))
	}
	if slices.Sort(got); err != nil || !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Errorf("answers %q (%v), want 0, 1 and 2", got, err)
	}
	start := time.Now()
	msgs, err = admin.Ask(ctx, nc, []string{"test.nobody", "test.none"}, time.Minute, 0)
	if err != nil || len(msgs) != 0 || time.Since(start) > 30*time.Second {
		t.Errorf("asking where nobody listens: %d answers, %v, after %v", len(msgs), err, time.Since(start))
	}
	msgs, err = admin.Ask(ctx, nc, []string{"test.one"}, 500*time.Millisecond, 0)
	if err != nil || len(msgs) != 2 {
		t.Errorf("all answers within the time: %d, %v; want 2", len(msgs), err)
	}

	// Anyone on the bus may answer, as often as they like: Ask holds no
	// more than its bound.
	flood, err := nc.Subscribe("test.flood", func(m *nats.Msg) {
		for range 3 * admin.MaxAnswers {
			_ = m.Respond([]byte("again"))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Unsubscribe()
	msgs, err = admin.Ask(ctx, nc, []string{"test.flood"}, time.Second, 0)
	if err != nil || len(msgs) == 0 || len(msgs) > admin.MaxAnswers {
		t.Errorf("a flood of answers: %d kept, %v; want some and at most %d", len(msgs), err, admin.MaxAnswers)
	}

	// A connection closed while Ask waits ends it at once, saying so.
	asker, err := nats.Connect(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 1)
	silent, err := nc.Subscribe("test.silent", func(*nats.Msg) { asked <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := admin.Ask(ctx, asker, []string{"test.silent"}, time.Hour, 1)
		done <- err
	}()
	<-asked
	asker.Close()
	select {
	case err := <-done:
		if !errors.Is(err, nats.ErrConnectionClosed) {
			t.Errorf("Ask on a connection closed meanwhile: %v, want %v", err, nats.ErrConnectionClosed)
		}
	case <-time.After(30 * time.Second):
		t.Error("Ask on a connection closed meanwhile waits out its time")
	}
}
