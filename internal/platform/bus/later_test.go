package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestLater: a handler that asks to see a message again later gets it back
// no sooner than asked, as often as it asks, and it is never counted as a
// failure: nothing is set aside.
func TestLater(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var mu sync.Mutex
	var seen []time.Time
	done := make(chan struct{})
	c := resultsConsumer("later")
	c.BackoffMin, c.BackoffMax = time.Millisecond, time.Millisecond // a failure would come back at once
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, time.Now())
		if len(seen) < 3 {
			return bus.Later(300 * time.Millisecond)
		}
		close(done)
		return nil
	})
	if err := b.Publish(context.Background(), result("mx1", 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the message did not come back")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(seen); i++ {
		if gap := seen[i].Sub(seen[i-1]); gap < 300*time.Millisecond {
			t.Errorf("back after %s, asked for 300ms", gap)
		}
	}
	if d, ok := bus.IsLater(bus.Later(time.Minute)); !ok || d != time.Minute {
		t.Errorf("IsLater = %s, %v", d, ok)
	}
	if _, ok := bus.IsLater(bus.Permanent(context.Canceled)); ok {
		t.Error("a permanent error read as a timer")
	}
	info, err := b.JS.Stream(context.Background(), events.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("%d messages set aside", n)
	}
}
