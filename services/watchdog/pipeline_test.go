package watchdog_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
	"github.com/tocsin-alarm/tocsin/services/prober"
	"github.com/tocsin-alarm/tocsin/services/verifier"
	"github.com/tocsin-alarm/tocsin/services/watchdog"
)

// hc stands in for healthchecks.io on loopback: it records every ping and
// every /fail body, in order.
type hc struct {
	mu    sync.Mutex
	calls []string // "ping" or "fail: <body>"
}

func (h *hc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h.mu.Lock()
	defer h.mu.Unlock()
	switch r.URL.Path {
	case "/ok": // the one server's check, which must not fail
	case "/ping/0f3a-token":
		h.calls = append(h.calls, "ping")
	case "/ping/0f3a-token/fail":
		h.calls = append(h.calls, "fail: "+string(body))
	default:
		http.NotFound(w, r)
		return
	}
	w.Write([]byte("OK"))
}

// since is the calls from the n-th on.
func (h *hc) since(n int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n > len(h.calls) {
		return nil
	}
	return append([]string(nil), h.calls[n:]...)
}

func (h *hc) count() int { return len(h.since(0)) }

// running is a service that can be stopped and started again.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, run func(context.Context) error) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
}

// TestPipelineProvesItselfToTheSwitch runs the prober, the verifier, the
// notifier and the watchdog on real JetStream, with a stand-in switch on
// loopback: pings come while all run; the verifier stopped, the switch is
// told so, by name, and pinged again once it is back; the same for the
// notifier. The canary never touches a server's state nor an incident.
func TestPipelineProvesItselfToTheSwitch(t *testing.T) {
	sw := &hc{}
	ts := httptest.NewServer(sw)
	defer ts.Close()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1, ams1]
checks: {interval: 1h, timeout: 500ms}
boxes:
  - {id: web, name: Web, servers: [{id: web1, check: "`+ts.URL+`/ok"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
watchdog: {url_env: HC_URL, every: 1s, timeout: 500ms}
`), func(name string) (string, bool) { return ts.URL + "/ping/0f3a-token", name == "HC_URL" })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := func() (*bus.Bus, *slog.Logger) { return srv.Connect(t, nil), log }
	for _, loc := range cfg.Locations {
		b, l := deps()
		p, err := prober.New(cfg, prober.Options{Location: loc, Concurrency: 2}, prober.Deps{Bus: b, Log: l})
		if err != nil {
			t.Fatal(err)
		}
		start(t, p.Run)
	}
	startVerifier := func() *running {
		b, l := deps()
		return start(t, verifier.New(cfg, verifier.Deps{Bus: b, Log: l}).Run)
	}
	startNotifier := func() *running {
		b, l := deps()
		n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: l})
		if err != nil {
			t.Fatal(err)
		}
		return start(t, n.Run)
	}
	v, n := startVerifier(), startNotifier()
	b, l := deps()
	wd, err := watchdog.New(cfg, watchdog.Deps{Bus: b, Log: l})
	if err != nil {
		t.Fatal(err)
	}
	start(t, wd.Run)

	pinged := func(from int, want int) func() bool {
		return func() bool {
			n := 0
			for _, c := range sw.since(from) {
				if c == "ping" {
					n++
				}
			}
			return n >= want
		}
	}
	failed := func(from int, prefix string) func() bool {
		return func() bool {
			for _, c := range sw.since(from) {
				if strings.HasPrefix(c, "fail: "+prefix) {
					return true
				}
			}
			return false
		}
	}
	wait.For(t, "pings while every stage runs", pinged(0, 2))
	if calls := sw.since(0); strings.Contains(strings.Join(calls, "\n"), "fail") {
		t.Errorf("the switch was told of a failure while every stage ran: %q", calls)
	}

	v.stop()
	mark := sw.count()
	wait.For(t, "a /fail naming the verifier", failed(mark, "verifier: no canary judged since "))
	startVerifier()
	mark = sw.count()
	wait.For(t, "pings once the verifier is back", pinged(mark, 1))

	n.stop()
	mark = sw.count()
	wait.For(t, "a /fail naming the notifier", failed(mark, "notifier: no canary decided since "))
	startNotifier()
	mark = sw.count()
	wait.For(t, "pings once the notifier is back", pinged(mark, 1))

	// Nothing of the canary reaches what people see: no server's record,
	// no state change, no incident.
	bb := srv.Connect(t, nil)
	ctx := context.Background()
	servers, err := bb.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := servers.Get(ctx, events.CanaryServer); err == nil {
		t.Error("the canary has a server record")
	}
	s, err := bb.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	for subj := range info.State.Subjects {
		if !strings.HasPrefix(subj, "canary.") && strings.Contains(subj, "canary") || strings.HasPrefix(subj, "incident.") || strings.HasPrefix(subj, "server."+events.CanaryServer) {
			t.Errorf("the canary reached %s", subj)
		}
	}
}
