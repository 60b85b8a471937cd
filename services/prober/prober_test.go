package prober

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestReplicasScheduleEachSlotOnce runs two probers at one location, each
// with its scheduler: JetStream's de-duplication of each window's id must
// leave one window, and so one check and one result, per server and slot.
func TestReplicasScheduleEachSlotOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	requests := map[string]int{}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
	}))
	defer web.Close()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1s, timeout: 500ms}
boxes:
  - {id: web, name: Web, servers: [{id: web1, check: "`+web.URL+`"}, {id: web2, check: "`+web.URL+`/x"}, {id: down1, check: "tcp://127.0.0.1:1"}]}
  - {id: backups, name: Mail Backups, servers: [{id: backup-nightly, push: {every: 5s, grace: 1s, token_env: PUSH_TOKEN}}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(name string) (string, bool) { return "0123456789abcdef0123", name == "PUSH_TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	var log logbuf.Buffer
	for range 2 {
		b := srv.Connect(t, nil)
		p, err := New(cfg, Options{Location: "lon1", Concurrency: 4}, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(&log, nil))})
		if err != nil {
			t.Fatal(err)
		}
		go func() { done <- p.Run(ctx) }()
	}
	// The checks are counted over a window of 4.5s: the time is the
	// subject, so it is slept, not waited for.
	time.Sleep(4500 * time.Millisecond)
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}

	got := readResults(t, srv.Connect(t, nil))
	perServer := map[string]int{}
	for server, evs := range got.results {
		perServer[server] = len(evs)
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			if r.Server == "down1" && (r.OK || r.Reason != "connection refused") {
				t.Errorf("down1 result ok=%v %q, want connection refused", r.OK, r.Reason)
			}
			if r.Server != "down1" && !r.OK {
				t.Errorf("%s failed: %s", r.Server, r.Reason)
			}
		}
	}
	// A push server reports in: no prober checks it.
	if n := perServer["backup-nightly"]; n != 0 {
		t.Errorf("the push server was checked %d times", n)
	}
	// A push server reports in: no prober checks it, nor tries to.
	if n := perServer["backup-nightly"]; n != 0 || log.Has("backup-nightly") {
		t.Errorf("the push server was checked %d times, or its task tried:\n%s", n, log.String())
	}
	for id, n := range got.tasks {
		if n != 1 {
			t.Errorf("task %s has %d results", id, n)
		}
	}
	// Results are de-duplicated by task; the server itself counts the checks.
	mu.Lock()
	defer mu.Unlock()
	for server, path := range map[string]string{"web1": "/", "web2": "/x"} {
		if requests[path] != perServer[server] {
			t.Errorf("%s was checked %d times for %d results: a task ran twice", server, requests[path], perServer[server])
		}
	}
	// 4.5 seconds at 1s: the slot current at the start and the 4 or 5 that
	// follow, never the 10 or so of two schedulers that did not agree.
	for _, s := range []string{"web1", "web2", "down1"} {
		if n := perServer[s]; n < 4 || n > 6 {
			t.Errorf("%s checked %d times in 4.5s at a 1s interval, want 4 to 6 (all: %v)", s, n, perServer)
		}
	}
}
