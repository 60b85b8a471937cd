package prober

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// counting is a web server that counts the requests for each path: the
// servers' own count of the checks, which results (de-duplicated by task)
// cannot give.
type counting struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newCounting(t *testing.T) *counting {
	c := &counting{hits: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[strings.TrimPrefix(r.URL.Path, "/")]++
		c.mu.Unlock()
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *counting) count(server string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[server]
}

// fleet is a config of servers checked at web, one path each.
func fleet(t *testing.T, web *counting, locations, interval string, servers ...string) *config.Config {
	t.Helper()
	var y strings.Builder
	fmt.Fprintf(&y, "site: {name: Test}\nlocations: [%s]\nchecks: {interval: %s, timeout: 500ms}\n", locations, interval)
	y.WriteString("staff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}\n")
	y.WriteString("boxes:\n  - id: web\n    name: Web\n    servers:\n")
	for _, s := range servers {
		fmt.Fprintf(&y, "      - {id: %s, check: \"%s/%s\"}\n", s, web.URL, s)
	}
	cfg, err := config.Parse("test.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fixedLive is a scheduler's view of the live locations that never changes.
type fixedLive []string

func (fixedLive) WaitReady(context.Context) error          { return nil }
func (fixedLive) Settled(context.Context, time.Time) error { return nil }
func (l fixedLive) At(time.Time) []string                  { return l }
func quiet() *slog.Logger                                  { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func slotOf(task string) int64 {
	n, _ := strconv.ParseInt(task[strings.LastIndexByte(task, '/')+1:], 10, 64)
	return n
}
func goRun(f func(context.Context) error) (func() error, context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	return func() error { cancel(); return <-done }, ctx
}

// takeWindowsSending is takeWindows with the sender of its results
// running beside it, as Run has them.
func (p *Prober) takeWindowsSending(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.sent.run(ctx) })
	err := p.takeWindows(ctx)
	wg.Wait()
	p.sent.wait()
	return err
}

// results follows the results stream: each server's slots, and the
// location each was checked from.
func results(t *testing.T, b *bus.Bus) func() map[string]map[int64]string {
	t.Helper()
	var mu sync.Mutex
	got := map[string]map[int64]string{}
	c, err := b.JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		if err != nil {
			t.Errorf("a result that does not decode: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			if got[r.Server] == nil {
				got[r.Server] = map[int64]string{}
			}
			got[r.Server][slotOf(r.Task)] = r.Location
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return func() map[string]map[int64]string {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]map[int64]string{}
		for s, slots := range got {
			out[s] = map[int64]string{}
			for n, l := range slots {
				out[s][n] = l
			}
		}
		return out
	}
}

// TestReplicasWithDifferentLiveSets runs two schedulers that disagree on
// which locations are live (one sees ams1 and lon1, the other lon1 and
// nyc1) and a prober at each location: whichever replica's window is
// stored, it is stored whole, so every server is checked exactly once in
// each slot, from one location.
func TestReplicasWithDifferentLiveSets(t *testing.T) {
	t.Parallel()
	web := newCounting(t)
	servers := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	cfg := fleet(t, web, "lon1, ams1, nyc1", "1s", servers...)
	srv := bustest.Start(t)
	var stops []func() error
	for _, loc := range cfg.Locations {
		p, err := New(cfg, Options{Location: loc}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := goRun(p.takeWindowsSending)
		stops = append(stops, stop)
	}
	got := results(t, srv.Connect(t, quiet()))
	for _, live := range []fixedLive{{"ams1", "lon1"}, {"lon1", "nyc1"}} {
		p, err := New(cfg, Options{Location: "lon1"}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		stop, _ := goRun(func(ctx context.Context) error { return p.schedule(ctx, live) })
		stops = append(stops, stop)
	}
	from := time.Now().Add(time.Second)
	const rounds = 4
	wait.For(t, "four slots of every server checked", func() bool {
		all := got()
		for _, s := range servers {
			first, _ := schedule.SlotAt(from, time.Second, schedule.Offset(s, time.Second))
			for n := first + 1; n <= first+rounds; n++ {
				if _, ok := all[s][n]; !ok {
					return false
				}
			}
		}
		return true
	})
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	// Every check begun before the stop has published its result by now:
	// a prober finishes the checks in hand before it returns.
	all := got()
	by := map[string]int{}
	for _, s := range servers {
		if n := web.count(s); n != len(all[s]) {
			t.Errorf("%s was checked %d times for %d slots: a slot was checked twice", s, n, len(all[s]))
		}
		first, last := int64(-1), int64(-1)
		for n, loc := range all[s] {
			by[loc]++
			if first < 0 || n < first {
				first = n
			}
			last = max(last, n)
		}
		if int64(len(all[s])) != last-first+1 {
			t.Errorf("%s checked in %d slots from %d to %d: one was missed", s, len(all[s]), first, last)
		}
	}
	if by["lon1"] == 0 || by["ams1"]+by["nyc1"] == 0 {
		t.Errorf("checks by location %v: want lon1's, and ams1's or nyc1's", by)
	}
}

// TestWindowOfAStoppedProber: a prober that stops after taking a window,
// before its checks fall due, leaves them to the location's next prober,
// which runs them when they fall due.
func TestWindowOfAStoppedProber(t *testing.T) {
	t.Parallel()
	web := newCounting(t)
	cfg := fleet(t, web, "lon1", "1h", "web1")
	srv := bustest.Start(t)
	b := srv.Connect(t, quiet())
	first, err := New(cfg, Options{Location: "lon1"}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	stop, ctx := goRun(first.takeWindowsSending)

	k := windowOf(time.Now()) + 3
	ws := &events.ProbeSchedule{Start: windowStart(k), WindowMS: 1000, Locations: []string{"lon1"},
		Checks: []events.ScheduledCheck{{Server: "web1", Slot: 4242, DueMS: 100}}}
	if err := b.Publish(ctx, events.New(events.ScheduleID(k, 0), "prober@lon1", ws.Start, ws)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the window in the first prober's hands", func() bool {
		cons, err := b.JS.Consumer(ctx, events.StreamSchedule, scheduleConsumerName("lon1"))
		if err != nil {
			return false // not set up yet
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumAckPending == 1
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := web.count("web1"); n != 0 {
		t.Fatalf("web1 checked %d times before its check fell due", n)
	}

	next, err := New(cfg, Options{Location: "lon1"}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	stop, ctx = goRun(next.takeWindowsSending)
	defer stop()
	r := nextResult(ctx, t, b, "web1")
	if r.Task != "web1/4242" || r.Location != "lon1" || !r.OK || r.Purpose != events.PurposeScheduled {
		t.Errorf("result %+v, want a passed scheduled check of web1/4242 from lon1", r)
	}
	if due := ws.Due(ws.Checks[0]); r.Started.Before(due) {
		t.Errorf("checked at %s, before it fell due at %s", r.Started.Format("15:04:05.000"), due.Format("15:04:05.000"))
	}
	if n := web.count("web1"); n != 1 {
		t.Errorf("web1 checked %d times, want once", n)
	}
}

// windowsAtLon1 runs lon1's prober on windows alone, for web1 and web2
// checked hourly: the servers' count of checks, a connection to publish
// windows on, and the prober's context.
func windowsAtLon1(t *testing.T) (*counting, *bus.Bus, context.Context) {
	web := newCounting(t)
	cfg := fleet(t, web, "lon1", "1h", "web1", "web2")
	srv := bustest.Start(t)
	p, err := New(cfg, Options{Location: "lon1"}, Deps{Bus: srv.Connect(t, quiet()), Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	stop, ctx := goRun(p.takeWindowsSending)
	t.Cleanup(func() { _ = stop() })
	return web, srv.Connect(t, quiet()), ctx
}

// TestForgedWindows: a window that does not decode, has too many checks,
// begins an hour from now, or names a server the config does not have,
// is set aside with the reason; the checks it names that the config has
// still run, and so do the windows after it.
func TestForgedWindows(t *testing.T) {
	t.Parallel()
	web, b, ctx := windowsAtLon1(t)

	now := time.Now().UTC()
	check := func(server string) map[string]any {
		return map[string]any{"server": server, "loc": 0, "slot": 7, "due_ms": 0}
	}
	many := make([]map[string]any, events.MaxScheduleChecks+1)
	for i := range many {
		many[i] = check("s" + strconv.Itoa(i))
	}
	for i, w := range []struct {
		start  time.Time
		checks []map[string]any
	}{
		{now, []map[string]any{check("web1.internal")}},
		{now, many},
		{now.Add(time.Hour), []map[string]any{check("web2")}},
		{now, []map[string]any{check("web1"), check("ghost")}},
		{now, []map[string]any{check("web2")}},
	} {
		data, err := json.Marshal(map[string]any{
			"v": 1, "id": "forged/" + strconv.Itoa(i), "type": events.TypeProbeSchedule, "time": now, "source": "nobody",
			"data": map[string]any{"start": w.start, "window_ms": 1000, "locations": []string{"lon1"}, "checks": w.checks},
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.JS.Publish(ctx, events.SubjectProbeSchedule, data, jetstream.WithMsgID("forged/"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"web1", "web2"} {
		if r := nextResult(ctx, t, b, s); r.Task != s+"/7" || !r.OK {
			t.Errorf("result %+v, want a passed check of %s/7", r, s)
		}
	}

	dl, err := b.JS.OrderedConsumer(ctx, events.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for range 4 {
		m, err := dl.Next(jetstream.FetchMaxWait(wait.Default))
		if err != nil {
			t.Fatalf("set aside %d windows, want 4: %v\n%s", len(reasons), err, strings.Join(reasons, "\n"))
		}
		if c := m.Headers().Get(events.HeaderDeadConsumer); c != scheduleConsumerName("lon1") {
			t.Errorf("set aside by %q", c)
		}
		reasons = append(reasons, m.Headers().Get(events.HeaderDeadReason))
	}
	all := strings.Join(reasons, "\n")
	for _, want := range []string{`server "web1.internal" must be`, "5001 checks, at most 5000", "no scheduler publishes one so early", "checks of ghost, not servers"} {
		if !strings.Contains(all, want) {
			t.Errorf("no window set aside for %q; the reasons:\n%s", want, all)
		}
	}
	if n := web.count("web2"); n != 1 {
		t.Errorf("web2 checked %d times, want once: the window an hour ahead was run", n)
	}
}

// TestWindowHandledAgain: a window that comes back to the prober that ran
// it (here, the same window under another id) runs only the checks that
// had not run: a server is not checked twice for one slot.
func TestWindowHandledAgain(t *testing.T) {
	t.Parallel()
	web, b, ctx := windowsAtLon1(t)
	k := windowOf(time.Now())
	ws := &events.ProbeSchedule{Start: windowStart(k), WindowMS: 1000, Locations: []string{"lon1"},
		Checks: []events.ScheduledCheck{{Server: "web1", Slot: 42}}}
	if err := b.Publish(ctx, events.New(events.ScheduleID(k, 0), "prober@lon1", ws.Start, ws)); err != nil {
		t.Fatal(err)
	}
	nextResult(ctx, t, b, "web1")
	wait.For(t, "the first window acknowledged", func() bool {
		cons, err := b.JS.Consumer(ctx, events.StreamSchedule, scheduleConsumerName("lon1"))
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Consumer >= 1
	})
	ws.Checks = append(ws.Checks, events.ScheduledCheck{Server: "web2", Slot: 42})
	if err := b.Publish(ctx, events.New(events.ScheduleID(k, 1), "prober@lon1", ws.Start, ws)); err != nil {
		t.Fatal(err)
	}
	nextResult(ctx, t, b, "web2")
	wait.For(t, "web2 checked", func() bool { return web.count("web2") == 1 })
	if n := web.count("web1"); n != 1 {
		t.Errorf("web1 checked %d times for one slot, want once", n)
	}
}
