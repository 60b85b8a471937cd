package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestCopySentAgainIsNotHandledTwice: handling falls behind, so messages
// wait in a worker's queue past their ack wait and JetStream sends them
// again; a copy of a message already handled and acknowledged here is
// acknowledged without being handled a second time.
func TestCopySentAgainIsNotHandledTwice(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	const n = 30
	for i := range n {
		if err := b.Publish(ctx, result("mx1", i)); err != nil {
			t.Fatal(err)
		}
	}
	c := resultsConsumer("copies")
	c.Workers = 1
	c.Key = func(subject string) string { return subject }
	c.AckWait = time.Second
	var mu sync.Mutex
	calls := map[string]int{}
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		mu.Lock()
		calls[ev.ID]++
		mu.Unlock()
		time.Sleep(100 * time.Millisecond) // n of these: three ack waits
		return nil
	})
	// Every message handled, and every copy sent settled.
	wait.Within(t, 2*time.Minute, "every message and copy settled", func() bool {
		mu.Lock()
		handled := len(calls)
		mu.Unlock()
		cons, err := b.JS.Consumer(ctx, events.StreamResults, "copies")
		if err != nil {
			return false
		}
		info := cons.CachedInfo()
		return handled == n && info.NumAckPending == 0 && info.NumPending == 0
	})
	cons, err := b.JS.Consumer(ctx, events.StreamResults, "copies")
	if err != nil {
		t.Fatal(err)
	}
	sent := cons.CachedInfo().Delivered.Consumer
	if sent <= n {
		t.Fatalf("JetStream sent %d deliveries of %d messages: no copy, the test proves nothing", sent, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, k := range calls {
		if k != 1 {
			t.Errorf("%s handled %d times", id, k)
		}
	}
	t.Logf("%d deliveries of %d messages", sent, n)
}
