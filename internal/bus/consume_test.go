package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/internal/bus/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func result(server string, n int) events.Event {
	at := time.Date(2026, 11, 21, 2, 0, n, 0, time.UTC)
	return events.New(fmt.Sprintf("%s/%d", server, n), "test", at, &events.ProbeResult{
		Server: server, Location: "lon1", Check: "tcp://127.0.0.1:1", Task: "t", Purpose: events.PurposeScheduled,
		Started: at, OK: true,
	})
}

// consume runs a consumer until the test ends.
func consume(t *testing.T, b *bus.Bus, c bus.Consumer, h bus.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, c, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
}

func resultsConsumer(name string) bus.Consumer {
	return bus.Consumer{Stream: events.StreamResults, Name: name, Filter: []string{events.SubjectProbeResults},
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
}

// deadLetters waits for n messages on the consumer's dead-letter subject.
func deadLetters(t *testing.T, b *bus.Bus, consumer string, n int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := b.JS.OrderedConsumer(ctx, events.StreamDeadLetters, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectDeadLetter(consumer)}})
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for len(got) < n {
		m, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("after %d dead letters of %d: %v", len(got), n, err)
		}
		got = append(got, m)
	}
	return got
}

func TestAckPolicy(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()

	var mu sync.Mutex
	attempts := map[string]int{}
	handled := make(chan string, 100)
	consume(t, b, resultsConsumer("policy"), func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		attempts[ev.ID]++
		n := attempts[ev.ID]
		mu.Unlock()
		switch ev.Data.(*events.ProbeResult).Server {
		case "flaky":
			if n < 3 {
				return errors.New("provider unavailable")
			}
		case "refused":
			return bus.Permanent(errors.New("provider refused it for good"))
		case "panics":
			panic("nil map")
		}
		handled <- ev.ID
		return nil
	})

	for _, s := range []string{"ok", "flaky", "refused", "panics"} {
		if err := b.Publish(ctx, result(s, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.JS.Publish(ctx, "probe.result.garbled", []byte("{not json")); err != nil {
		t.Fatal(err)
	}

	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case id := <-handled:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("handled only %v", got)
		}
	}
	if !got["ok/1"] || !got["flaky/1"] {
		t.Errorf("handled %v, want ok/1 and flaky/1", got)
	}

	reasons := map[string]string{}
	for _, m := range deadLetters(t, b, "policy", 3) {
		reasons[m.Headers().Get(events.HeaderDeadSubject)] = m.Headers().Get(events.HeaderDeadReason)
		if m.Headers().Get(events.HeaderDeadStream) != events.StreamResults {
			t.Errorf("dead letter without its stream: %v", m.Headers())
		}
	}
	for subject, want := range map[string]string{
		"probe.result.refused": "refused it for good",
		"probe.result.panics":  "handler panicked: nil map",
		"probe.result.garbled": "malformed envelope",
	} {
		if !strings.Contains(reasons[subject], want) {
			t.Errorf("dead-letter reason for %s = %q, want it to contain %q", subject, reasons[subject], want)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	if attempts["flaky/1"] != 3 {
		t.Errorf("flaky message handled %d times, want 3", attempts["flaky/1"])
	}
	if attempts["refused/1"] != 1 {
		t.Errorf("permanently failing message handled %d times, want 1", attempts["refused/1"])
	}
}

func TestKeyedWorkersKeepOrder(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	const perServer = 50
	servers := []string{"a", "b", "c", "d", "e", "f"}

	var mu sync.Mutex
	seen := map[string][]int{}
	done := make(chan struct{})
	c := resultsConsumer("keyed")
	c.Workers = 4
	c.Key = func(subject string) string { return subject }
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		r := ev.Data.(*events.ProbeResult)
		mu.Lock()
		defer mu.Unlock()
		seen[r.Server] = append(seen[r.Server], r.Started.Second())
		if total(seen) == perServer*len(servers) {
			close(done)
		}
		return nil
	})
	for i := range perServer {
		for _, s := range servers {
			if err := b.Publish(ctx, result(s, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every message was handled")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range servers {
		for i, n := range seen[s] {
			if n != i {
				t.Fatalf("server %s: messages handled in order %v", s, seen[s])
			}
		}
	}
}

func total(m map[string][]int) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

func TestPublishIsIdempotent(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	for range 3 {
		if err := b.Publish(ctx, result("mx1", 7)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.JS.Stream(ctx, events.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages after publishing one event three times, want 1", info.State.Msgs)
	}
}

// TestConsumerDeletedIsSetUpAgain: a consumer deleted under a running
// service (by an operator, or lost by the cluster) comes back by itself.
func TestConsumerDeletedIsSetUpAgain(t *testing.T) {
	b := bustest.New(t)
	ctx := context.Background()
	handled := make(chan string, 10)
	c := resultsConsumer("phoenix")
	c.Since = time.Minute // the new consumer starts far enough back to see what came meanwhile
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		handled <- ev.ID
		return nil
	})
	wait := func(id string) {
		t.Helper()
		select {
		case got := <-handled:
			if got != id {
				t.Fatalf("handled %s, want %s", got, id)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s never handled", id)
		}
	}
	if err := b.Publish(ctx, result("a", 1)); err != nil {
		t.Fatal(err)
	}
	wait("a/1")
	if err := b.JS.DeleteConsumer(ctx, events.StreamResults, "phoenix"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := b.Publish(ctx, result("a", 2)); err != nil {
		t.Fatal(err)
	}
	// Set up again from a minute back, it sees a/1 once more (handlers are
	// idempotent) and then a/2.
	for {
		select {
		case got := <-handled:
			if got == "a/2" {
				return
			}
		case <-time.After(15 * time.Second):
			t.Fatal("a/2 never handled after the consumer was deleted")
		}
	}
}

func TestConnectErrorHidesPassword(t *testing.T) {
	_, err := bus.Connect("nats://tocsin:S3cretPW@127.0.0.1:1", nil, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), nats.MaxReconnects(0), nats.Timeout(time.Second))
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if strings.Contains(err.Error(), "S3cretPW") || !strings.Contains(err.Error(), "tocsin:xxxxx@127.0.0.1:1") {
		t.Errorf("error = %v, want the URL with its password hidden", err)
	}
}
