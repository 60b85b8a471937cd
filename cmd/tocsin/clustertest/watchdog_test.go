package clustertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestFrozenProcessStopsPinging runs "tocsin run" (every service and an
// embedded NATS in one process) with a watchdog pointed at a stand-in
// switch on loopback, then freezes the process with SIGSTOP: the pings
// must stop, since a frozen or dead box cannot vouch for itself, and come
// back with SIGCONT.
func TestFrozenProcessStopsPinging(t *testing.T) {
	bin := build(t)
	var pings, fails atomic.Int64
	sw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ping/0f3a":
			pings.Add(1)
		case "/ping/0f3a/fail":
			fails.Add(1)
		}
	}))
	defer sw.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tocsin.yaml")
	if err := os.WriteFile(cfg, []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1h, timeout: 1s}
boxes:
  - {id: web, name: Web, servers: [{id: web1, check: "`+sw.URL+`/ok"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
statuspage: {listen: "127.0.0.1:0"}
watchdog: {url_env: HC_URL, every: 1s, timeout: 500ms}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newProc(t, dir, "tocsin", bin.tocsin, []string{"HC_URL=" + sw.URL + "/ping/0f3a"},
		"run", "--config", cfg, "--data", filepath.Join(dir, "data"), "--admin-listen", "")
	p.start()
	pid := p.cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGCONT) }) // before the kill of newProc's cleanup

	wait.Within(t, time.Minute, "pings from the running process", func() bool { return pings.Load() >= 2 })
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// A call under way when the process stopped may still land: let it.
	wait.Until(context.Background(), time.Second, func() bool { return false })
	frozen := pings.Load()
	// The one bounded look for "nothing more comes": five intervals of the
	// watchdog, in which a live process would ping five times.
	if wait.Until(context.Background(), 5*time.Second, func() bool { return pings.Load() > frozen }) {
		t.Fatalf("the switch was pinged by a frozen process (%d pings, then %d)", frozen, pings.Load())
	}
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 30*time.Second, "pings again once the process runs", func() bool { return pings.Load() > frozen })
	if n := fails.Load(); n != 0 {
		t.Errorf("the switch was told of %d failures while the pipeline ran", n)
	}
}
