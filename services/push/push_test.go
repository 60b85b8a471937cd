package push

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/clock"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const token = "b7f3c9a1e5d2f8046c1a9e3b5d7f2a4c"

var t0 = time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
boxes:
  - {id: backups, name: Mail Backups, servers: [{id: backup-nightly, push: {every: 24h, grace: 1h, token_env: PUSH_TOKEN}}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(name string) (string, bool) { return token, name == "PUSH_TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// instance is one push service run on a loopback port.
type instance struct {
	url  string
	m    *metrics.Metrics
	log  *logbuf.Buffer
	stop func()
}

func startPush(t *testing.T, b *bus.Bus, c *clock.Manual) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{url: "http://" + ln.Addr().String(), m: metrics.New(), log: &logbuf.Buffer{}}
	s := New(testConfig(t), Deps{Bus: b, Log: slog.New(slog.NewTextHandler(in.log, nil)), Now: c.Now, Metrics: in.m},
		WithListener(ln), WithTick(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("push service: %v", err)
		}
	}
	t.Cleanup(in.stop)
	wait.For(t, "the push service to serve", func() bool {
		ok, _ := in.m.Ready(Source)
		return ok
	})
	return in
}

func call(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// reports is every push report published so far.
func reports(t *testing.T, b *bus.Bus) []*events.PushReport {
	t.Helper()
	var out []*events.PushReport
	for _, ev := range bustest.Events(t, b, events.StreamResults, events.SubjectPushReports) {
		out = append(out, ev.Data.(*events.PushReport))
	}
	return out
}

func counted(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "tocsin_push_reports_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetValue() == result {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func recordOf(t *testing.T, b *bus.Bus, server string) (record, uint64) {
	t.Helper()
	kv, err := b.KV(context.Background(), events.BucketPush)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	rev, err := bus.GetJSON(context.Background(), kv, server, &rec)
	if err != nil {
		t.Fatal(err)
	}
	return rec, rev
}

// TestBadTokenIsCountedAndNothingElse: a wrong token, a malformed one, a
// path that is no report: each is a 404 and counted, and nothing else
// happens: no report, no change to the record, no token in the log.
func TestBadTokenIsCountedAndNothingElse(t *testing.T) {
	b := bustest.New(t)
	c := clock.New(t0)
	in := startPush(t, b, c)
	before, _ := recordOf(t, b, "backup-nightly")
	guesses := []string{
		"/push/" + strings.Replace(token, "b", "c", 1), "/push/" + strings.Replace(token, "b", "c", 1) + "/fail",
		"/push/short", "/push/" + token + "x/fail/", "/push/" + token + "/../" + token, "/push/", "/",
	}
	for _, path := range guesses {
		if got := call(t, http.MethodPost, in.url+path, "a message"); got != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, got)
		}
	}
	if got := counted(t, in.m, metrics.PushUnknownToken); got != float64(len(guesses)) {
		t.Errorf("%g unknown tokens counted, want %d", got, len(guesses))
	}
	if after, _ := recordOf(t, b, "backup-nightly"); after != before {
		t.Errorf("the record changed from %+v to %+v", before, after)
	}
	// The report of the right token after them shows the stream was
	// being written: it is the only report there.
	if got := call(t, http.MethodGet, in.url+"/push/"+token, ""); got != http.StatusOK {
		t.Fatalf("the right token: %d", got)
	}
	rs := reports(t, b)
	if len(rs) != 1 || rs[0].Outcome != events.PushOK {
		t.Errorf("reports %+v, want the one success", rs)
	}
	if strings.Contains(in.log.String(), token[:12]) {
		t.Errorf("the log holds the token:\n%s", in.log.String())
	}
}

// TestFailReportCarriesItsMessage: a failure report publishes at once,
// its message cleaned and part of the reason, the token taken out of it;
// a message too long is refused and records nothing.
func TestFailReportCarriesItsMessage(t *testing.T) {
	b := bustest.New(t)
	c := clock.New(t0)
	in := startPush(t, b, c)
	if got := call(t, http.MethodPost, in.url+"/push/"+token+"/fail", "rsync: disk full\n\x1b[31mretry with "+token+"\x00"); got != http.StatusOK {
		t.Fatalf("fail report: %d", got)
	}
	if got := call(t, http.MethodPost, in.url+"/push/"+token+"/fail", strings.Repeat("x", MaxBody+1)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("a message over %d bytes: %d, want 413", MaxBody, got)
	}
	if got := call(t, http.MethodDelete, in.url+"/push/"+token, ""); got != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", got)
	}
	rs := reports(t, b)
	if len(rs) != 1 {
		t.Fatalf("reports %+v, want one", rs)
	}
	want := "the job reported failure: rsync: disk full [31mretry with [token]"
	if r := rs[0]; r.Outcome != events.PushFailed || r.Reason != want || !r.At.Equal(t0) {
		t.Errorf("report %+v, want failed at %s with reason %q", r, t0, want)
	}
	if got := counted(t, in.m, metrics.PushFailed); got != 1 {
		t.Errorf("%g failures counted", got)
	}
}

// TestDeadlineSurvivesRestart: a job reports, the service restarts
// before its deadline and keeps it; past it, the miss is published once,
// and a restart publishes it again under the same id (stored once) rather
// than forgetting it or waiting afresh. A service down across a deadline
// gives the job one full every and grace instead.
func TestDeadlineSurvivesRestart(t *testing.T) {
	b := bustest.New(t)
	c := clock.New(t0)
	in := startPush(t, b, c)
	c.Advance(time.Minute)
	if got := call(t, http.MethodGet, in.url+"/push/"+token, ""); got != http.StatusOK {
		t.Fatalf("report: %d", got)
	}
	in.stop()
	deadline := t0.Add(time.Minute + 25*time.Hour)

	c.Advance(24 * time.Hour) // short of the deadline
	in = startPush(t, b, c)
	if rec, _ := recordOf(t, b, "backup-nightly"); !rec.Deadline.Equal(deadline) || rec.Missed {
		t.Fatalf("after the restart the record is %+v, want the deadline %s kept", rec, deadline)
	}
	c.Advance(time.Hour + time.Second) // past it
	wait.For(t, "the miss", func() bool { return len(reports(t, b)) == 2 })
	miss := reports(t, b)[1]
	if miss.Outcome != events.PushMissed || !miss.At.Equal(deadline) || !strings.Contains(miss.Reason, "no report for 25h (every 24h, grace 1h); last report 2026-11-21 02:01 UTC") {
		t.Errorf("miss %+v", miss)
	}
	in.stop()
	in = startPush(t, b, c)
	// Published again under the same id: still one miss in the stream.
	if rs := reports(t, b); len(rs) != 2 {
		t.Errorf("after a restart %d reports, want the success and one miss", len(rs))
	}
	if rec, _ := recordOf(t, b, "backup-nightly"); !rec.Missed {
		t.Errorf("the miss was forgotten: %+v", rec)
	}
	// Reporting again clears it.
	if got := call(t, http.MethodPost, in.url+"/push/"+token, ""); got != http.StatusOK {
		t.Fatalf("report: %d", got)
	}
	if rec, _ := recordOf(t, b, "backup-nightly"); rec.Missed || !rec.Deadline.Equal(c.Now().Add(25*time.Hour)) {
		t.Errorf("after a report the record is %+v", rec)
	}
	in.stop()

	// Down for two days: the deadline passed with nobody to hear the job.
	c.Advance(48 * time.Hour)
	startPush(t, b, c)
	if rec, _ := recordOf(t, b, "backup-nightly"); rec.Missed || !rec.Deadline.Equal(c.Now().Add(25*time.Hour)) {
		t.Errorf("after a long stop the record is %+v, want one full every and grace from the restart", rec)
	}
	if rs := reports(t, b); len(rs) != 3 {
		t.Errorf("after a long stop %d reports, want no new miss", len(rs))
	}
}

// TestASecondTocsinIsTheSwitch: a push server of a second Tocsin takes
// the calls a watchdog makes to its dead man's switch, as healthchecks.io
// would: a POST to the URL is alive, a POST to <url>/fail with the reason
// is a failure that says it.
func TestASecondTocsinIsTheSwitch(t *testing.T) {
	b := bustest.New(t)
	c := clock.New(t0)
	in := startPush(t, b, c)
	post := func(url, body string) int {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "text/plain; charset=utf-8") // as the watchdog sends it
		req.Header.Set("User-Agent", "tocsin-watchdog")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	url := in.url + "/push/" + token
	if got := post(url, ""); got != http.StatusOK {
		t.Fatalf("ping: %d", got)
	}
	c.Advance(time.Minute)
	reason := "verifier: no canary judged since 03:11:55 UTC (3 intervals)"
	if got := post(url+"/fail", reason); got != http.StatusOK {
		t.Fatalf("fail: %d", got)
	}
	var rs []*events.PushReport
	wait.For(t, "both reports", func() bool { rs = reports(t, b); return len(rs) == 2 })
	if rs[0].Outcome != events.PushOK || rs[1].Outcome != events.PushFailed || !strings.Contains(rs[1].Reason, reason) {
		t.Errorf("reports %+v, %+v: want ok, then failed saying %q", rs[0], rs[1], reason)
	}
}
