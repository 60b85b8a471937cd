package prober

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestCanaryRidesTheWindows: the canary travels the path of every
// scheduled check, in the windows, once for every live location, and each
// location's prober answers its own from there; nothing goes through the
// queue of the re-checks. A prober whose windows stall thus stops
// answering the canary, and the watchdog's switch is told.
func TestCanaryRidesTheWindows(t *testing.T) {
	t.Parallel()
	web := newCounting(t)
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1, ams1]
checks: {interval: 1h, timeout: 500ms}
boxes:
  - {id: web, name: Web, servers: [{id: web1, check: "`+web.URL+`/web1"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
watchdog: {url_env: HC_URL, every: 1s, timeout: 500ms}
`), func(name string) (string, bool) { return "http://127.0.0.1:9/ping", name == "HC_URL" })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	for _, loc := range cfg.Locations {
		p, err := New(cfg, Options{Location: loc, Heartbeat: 200 * time.Millisecond}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := goRun(p.Run)
		t.Cleanup(func() { _ = stop() })
	}
	b := srv.Connect(t, quiet())
	var mu sync.Mutex
	inWindow := map[string]bool{} // location → a window held its canary
	answered := map[string]bool{} // location → its canary's result
	follow := func(stream string, f func(events.Event)) {
		c, err := b.JS.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		cc, err := c.Consume(func(m jetstream.Msg) {
			evs, err := events.DecodeResults(m.Subject(), m.Data()) // a window, or results
			if err != nil {
				t.Errorf("%s: %v", m.Subject(), err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, ev := range evs {
				f(ev)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cc.Stop)
	}
	follow(events.StreamSchedule, func(ev events.Event) {
		ws := ev.Data.(*events.ProbeSchedule)
		for _, c := range ws.Checks {
			if c.Server == events.CanaryServer {
				inWindow[ws.Locations[c.Location]] = true
			}
		}
	})
	follow(events.StreamResults, func(ev events.Event) {
		if r := ev.Data.(*events.ProbeResult); r.Server == events.CanaryServer {
			if slot, loc, ok := events.ParseCanaryTaskID(r.Task); ok && slot > 0 && loc == r.Location {
				answered[loc] = true
			}
		}
	})
	wait.For(t, "each location's canary in a window, and answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inWindow["lon1"] && inWindow["ams1"] && answered["lon1"] && answered["ams1"]
	})
	s, err := b.JS.Stream(t.Context(), events.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.LastSeq; n != 0 {
		t.Errorf("the task queue took %d messages: the canary must ride the windows", n)
	}
}
