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

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
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
	t.Parallel()
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
		"probe.result.refused.lon1": "refused it for good",
		"probe.result.panics.lon1":  "handler panicked: nil map",
		"probe.result.garbled":      "malformed envelope",
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// TestSlowKeyHoldsUpOnlyItsOwnWorker: with keyed workers, a handler stuck
// on one key delays the keys that share its worker, and no others.
func TestSlowKeyHoldsUpOnlyItsOwnWorker(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	release := make(chan struct{})
	var mu sync.Mutex
	handled := map[string]int{}
	c := resultsConsumer("slowkey")
	c.Workers = 8
	c.Key = func(subject string) string { return subject }
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		r := ev.Data.(*events.ProbeResult)
		if r.Server == "slow" {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		handled[r.Server]++
		mu.Unlock()
		return nil
	})
	if err := b.Publish(ctx, result("slow", 0)); err != nil {
		t.Fatal(err)
	}
	const servers, each = 40, 5
	for i := range each {
		for s := range servers {
			if err := b.Publish(ctx, result(fmt.Sprintf("s%d", s), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() (done int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range handled {
			done += n
		}
		return done
	}
	// About one server in eight shares the slow one's worker; the rest
	// must get through while it is stuck.
	if !wait.Until(ctx, time.Minute, func() bool { return count() >= servers*each/2 }) {
		t.Fatalf("only %d of %d messages handled while one key was stuck", count(), servers*each)
	}
	close(release)
	if !wait.Until(ctx, time.Minute, func() bool { return count() >= servers*each+1 }) {
		t.Fatalf("only %d of %d messages handled after the stuck key went on", count(), servers*each+1)
	}
}

// TestKeyedRedeliveryKeepsEveryMessage: messages taken a batch at a time
// are each acknowledged once handled, a failed one comes back and is
// handled, and the ones that never failed keep their key's order.
func TestKeyedRedeliveryKeepsEveryMessage(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	const perServer = 60
	servers := []string{"a", "b", "c", "d"}
	var mu sync.Mutex
	attempts := map[string]int{}
	ok := map[string][]int{}
	c := resultsConsumer("redeliver")
	c.Workers = 3
	c.Key = func(subject string) string { return subject }
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		r := ev.Data.(*events.ProbeResult)
		n := r.Started.Second()
		mu.Lock()
		defer mu.Unlock()
		attempts[ev.ID]++
		if n%7 == 3 && attempts[ev.ID] == 1 {
			return errors.New("try again")
		}
		ok[r.Server] = append(ok[r.Server], n)
		return nil
	})
	for i := range perServer {
		for _, s := range servers {
			if err := b.Publish(ctx, result(s, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := 0
	if !wait.Until(ctx, time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n = 0
		for _, l := range ok {
			n += len(l)
		}
		return n >= perServer*len(servers)
	}) {
		t.Fatalf("%d of %d messages handled", n, perServer*len(servers))
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate to show
	mu.Lock()
	defer mu.Unlock()
	for _, s := range servers {
		seen := map[int]bool{}
		last := -1
		for _, n := range ok[s] {
			if seen[n] {
				t.Errorf("server %s: message %d handled twice", s, n)
			}
			seen[n] = true
			if n%7 == 3 {
				continue // came back after the others
			}
			if n < last {
				t.Errorf("server %s: handled in order %v", s, ok[s])
				break
			}
			last = n
		}
		if len(seen) != perServer {
			t.Errorf("server %s: %d of %d messages handled", s, len(seen), perServer)
		}
	}
}

// TestRestartLosesNothing: when ctx ends, Consume stops fetching, finishes
// and acknowledges what it was given, and returns; a consumer started
// afterwards handles every other message, and none of those again. (What
// JetStream had sent when the fetching stopped, and no longer had anyone
// to give it to, comes back after AckWait.)
func TestRestartLosesNothing(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	// More than JetStream lets the consumer hold at once, so that some
	// are still in the stream when it stops.
	const published = 3000
	for i := range published {
		s := fmt.Sprintf("s%d", i%5)
		if _, err := b.JS.PublishAsync(events.SubjectProbeResult(s, "lon1"), mustMarshal(t, result(s, i/5))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-b.JS.PublishAsyncComplete():
	case <-time.After(20 * time.Second):
		t.Fatal("publishing took over 20s")
	}
	c := resultsConsumer("restart")
	c.Workers = 2
	c.Key = func(subject string) string { return subject }
	c.AckWait = 2 * time.Second
	var mu sync.Mutex
	handled := []map[string]bool{{}, {}}
	run := func(i int, stopAfterFirst bool) (stop func()) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- b.Consume(cctx, c, func(ctx context.Context, ev events.Event) error {
				mu.Lock()
				handled[i][ev.ID] = true
				mu.Unlock()
				if stopAfterFirst {
					cancel()
				}
				time.Sleep(time.Millisecond)
				return nil
			})
		}()
		return func() {
			if !stopAfterFirst {
				cancel()
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Consume: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Consume did not return after its context ended")
			}
		}
	}
	run(0, true)() // stops by itself
	mu.Lock()
	first := len(handled[0])
	mu.Unlock()
	if first == published {
		t.Fatal("every message was handled before the first consumer stopped")
	}
	stop := run(1, false)
	defer stop()
	// Bounded generously: under the race detector on a busy machine the
	// messages the first consumer held come back only after their ack
	// wait, and slowly.
	n := 0
	if !wait.Until(ctx, 2*time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n = len(handled[0]) + len(handled[1])
		return n >= published
	}) {
		t.Fatalf("%d + %d of %d messages handled", first, n-first, published)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range handled[0] {
		if handled[1][id] {
			t.Errorf("%s handled before the restart and again after it", id)
		}
	}
	if n := len(handled[0]) + len(handled[1]); n != published {
		t.Errorf("%d messages handled, want %d", n, published)
	}
}

// TestHandlerContextEndsBeforeAckWait: a handler has most of AckWait, and
// its context ends before JetStream would deliver the message again, even
// when the service is shutting down.
func TestHandlerContextEndsBeforeAckWait(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	c := resultsConsumer("deadline")
	c.AckWait = 20 * time.Second
	c.Key = func(subject string) string { return subject }
	left := make(chan time.Duration, 10)
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		d, ok := ctx.Deadline()
		if !ok {
			left <- 0
			return nil
		}
		left <- time.Until(d)
		return nil
	})
	for i := range 3 {
		if err := b.Publish(context.Background(), result("mx1", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case d := <-left:
			if d <= c.AckWait/2 || d > c.AckWait*19/20 {
				t.Errorf("handler has %s of an AckWait of %s", d, c.AckWait)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("message not handled")
		}
	}
}

func mustMarshal(t *testing.T, ev events.Event) []byte {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A provider that answers "retry after" is left alone that long: the
// message comes back no sooner, though the consumer's own back-off is far
// shorter, and it is not lost.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	const after = 1500 * time.Millisecond
	var mu sync.Mutex
	var seen []time.Time
	consume(t, b, resultsConsumer("retry-after"), func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if len(seen) == 1 {
			return fmt.Errorf("send: %w", &bus.ProviderError{Status: 429, Retry: true, RetryAfter: after, Text: "rate limited"})
		}
		return nil
	})
	if err := b.Publish(context.Background(), result("mx1", 1)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the message handled again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if got := seen[1].Sub(seen[0]); got < after {
		t.Errorf("handled again after %v, want no sooner than the provider's %v", got, after)
	}
}

// A provider error that retrying cannot help is set aside, as Permanent is.
func TestProviderRefusalIsDeadLettered(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	consume(t, b, resultsConsumer("refused"), func(ctx context.Context, ev events.Event) error {
		return &bus.ProviderError{Status: 400, Text: "bad number"}
	})
	if err := b.Publish(context.Background(), result("mx1", 1)); err != nil {
		t.Fatal(err)
	}
	if got := deadLetters(t, b, "refused", 1)[0].Headers().Get(events.HeaderDeadReason); got != "bad number" {
		t.Errorf("reason %q, want %q", got, "bad number")
	}
}

func TestRetryAfterBounded(t *testing.T) {
	transient := func(d time.Duration) error { return &bus.ProviderError{Retry: true, RetryAfter: d} }
	for _, c := range []struct {
		name string
		err  error
		want time.Duration
	}{
		{"none", errors.New("x"), 0},
		{"given", transient(3 * time.Second), 3 * time.Second},
		{"negative", transient(-time.Hour), 0},
		{"too long", transient(24 * time.Hour), bus.MaxRetryAfter},
		{"wrapped", fmt.Errorf("sms: %w", transient(time.Second)), time.Second},
		{"joined, the longest", errors.Join(transient(time.Second), errors.New("x"), transient(7*time.Second)), 7 * time.Second},
		{"refused for good", &bus.ProviderError{RetryAfter: time.Minute}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := bus.RetryAfter(c.err); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}
