package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Two instances of an exclusive consumer: one takes every message, the
// other stands by, and takes over when the first stops (at once) or dies
// (within ExclusiveTTL).
func TestExclusiveConsumerHasOneActiveInstance(t *testing.T) {
	t.Parallel()
	for _, dies := range []bool{false, true} {
		name := "stops"
		if dies {
			name = "dies"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each on a server of its own
			testExclusive(t, dies)
		})
	}
}

func testExclusive(t *testing.T, dies bool) {
	srv := bustest.Start(t)
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string][]string{} // instance → message ids
	var logs bytes.Buffer
	roles := map[string]func() string{} // instance → its role, as its status says
	run := func(name string) (b *bus.Bus, stop func()) {
		var lmu sync.Mutex
		log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			lmu.Lock()
			defer lmu.Unlock()
			return logs.Write(p)
		}), nil))
		b = srv.Connect(t, log)
		c := resultsConsumer("exclusive")
		c.Exclusive, c.Workers, c.Key = true, 4, func(s string) string { return s }
		// What the server gave a dead instance in its last moment comes
		// back after this.
		c.AckWait = 2 * time.Second
		m := metrics.New()
		m.Expect(name, c.Name)
		c.Metrics = m
		roles[name] = func() string { return m.Role(ctx, name) }
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- b.Consume(cctx, c, func(_ context.Context, ev events.Event) error {
				mu.Lock()
				got[name] = append(got[name], ev.ID)
				mu.Unlock()
				return nil
			})
		}()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return b, stop
	}
	pub := srv.Connect(t, nil)
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			if err := pub.Publish(ctx, result("web"+string(rune('a'+i%5)), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := func() (a, b int) {
		mu.Lock()
		defer mu.Unlock()
		return len(got["a"]), len(got["b"])
	}
	waitTotal := func(n int, within time.Duration) {
		t.Helper()
		if !wait.Until(context.Background(), within, func() bool { a, b := counts(); return a+b >= n }) {
			a, b := counts()
			t.Fatalf("%d messages handled (a %d, b %d), want %d", a+b, a, b, n)
		}
	}

	connA, stopA := run("a")
	publish(0, 20)
	waitTotal(20, 30*time.Second)
	run("b")
	time.Sleep(500 * time.Millisecond) // b asks for messages too
	publish(20, 40)
	waitTotal(40, 30*time.Second)
	if !dies {
		// Idle for longer than the take-over time, a live instance keeps
		// its place.
		time.Sleep(bus.DefaultTakeOver + time.Second)
	}
	publish(40, 60)
	waitTotal(60, 30*time.Second)
	if a, b := counts(); a != 60 || b != 0 {
		t.Fatalf("with both running: a handled %d, b %d; want 60 and 0", a, b)
	}
	if a, b := roles["a"](), roles["b"](); a != "active" || b != "standby" {
		t.Errorf("with both running: a says it is %q, b %q; want active and standby", a, b)
	}

	if dies {
		connA.NC.Close() // no goodbye: the process is gone
		defer stopA()
	} else {
		stopA()
	}
	took := time.Now()
	publish(60, 80)
	waitTotal(80, bus.DefaultTakeOver+20*time.Second)
	t.Logf("the standby took over %s after the active instance stopped", time.Since(took).Round(100*time.Millisecond))
	if a, b := counts(); a != 60 || b != 20 {
		t.Errorf("after a stopped: a handled %d, b %d; want 60 and 20", a, b)
	}
	if b := roles["b"](); b != "active" {
		t.Errorf("after a stopped, b says it is %q, want active", b)
	}
	if !dies && strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("standing by is not worth a warning:\n%s", logs.String())
	}
}

// A consumer made before it was exclusive becomes exclusive where it is.
func TestConsumerBecomesExclusive(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	handled := make(chan string, 10)
	h := func(_ context.Context, ev events.Event) error { handled <- ev.ID; return nil }
	c := resultsConsumer("becomes")
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Consume(cctx, c, h) }()
	if err := b.Publish(ctx, result("web1", 1)); err != nil {
		t.Fatal(err)
	}
	<-handled
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Exclusive = true
	consume(t, b, c, h)
	if err := b.Publish(ctx, result("web1", 2)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-handled:
		if id != result("web1", 2).ID {
			t.Errorf("handled %s, want only the new message", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer made exclusive handles nothing")
	}
	info, err := b.JS.Consumer(ctx, events.StreamResults, "becomes")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := info.CachedInfo().Config; len(cfg.PriorityGroups) != 1 {
		t.Errorf("consumer config %+v: not exclusive", cfg)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
