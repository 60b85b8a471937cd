package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestAckWhenWaitsForWhatWasHandedOn: a message whose handler hands its
// work on is acknowledged once that is done, retried if it fails, and the
// worker takes the next message meanwhile.
func TestAckWhenWaitsForWhatWasHandedOn(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var mu sync.Mutex
	handed := map[string][]chan error{}
	c := resultsConsumer("ack-when")
	c.Workers = 1
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		done := make(chan error, 1)
		mu.Lock()
		handed[ev.ID] = append(handed[ev.ID], done)
		mu.Unlock()
		return bus.AckWhen(done)
	})
	publishAll(t, b, single("a", 1), single("b", 1))
	handedOn := func(id string, n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(handed[id]) == n
		}
	}
	// One worker, and both handed on: it did not wait for the first.
	wait.For(t, "both messages handed on", func() bool { return handedOn("a/1/result", 1)() && handedOn("b/1/result", 1)() })
	pending := func() int {
		cons, err := b.JS.Consumer(context.Background(), events.StreamResults, "ack-when")
		if err != nil {
			return -1
		}
		ci, err := cons.Info(context.Background())
		if err != nil {
			return -1
		}
		return ci.NumAckPending
	}
	if n := pending(); n != 2 {
		t.Fatalf("%d messages awaiting acknowledgement before what they handed on was done, want 2", n)
	}
	mu.Lock()
	handed["a/1/result"][0] <- nil
	handed["b/1/result"][0] <- errors.New("not stored")
	mu.Unlock()
	wait.For(t, "the failed one delivered again", handedOn("b/1/result", 2))
	mu.Lock()
	handed["b/1/result"][1] <- nil
	mu.Unlock()
	settled(t, b, "ack-when")
	if !handedOn("a/1/result", 1)() {
		t.Error("the message whose work was done was delivered again")
	}
}

// TestAckWhenInABatch: the events of a batch may hand their work on too;
// the batch is acknowledged once every one of them is done.
func TestAckWhenInABatch(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var mu sync.Mutex
	var handed []chan error
	c := splitting("ack-when-batch")
	c.Workers = 1
	consume(t, b, c, func(ctx context.Context, ev events.Event) error {
		done := make(chan error, 1)
		mu.Lock()
		handed = append(handed, done)
		mu.Unlock()
		return bus.AckWhen(done)
	})
	publishAll(t, b, batchOf(t, 1, "a", "b", "c"))
	// One worker, and all three handed on: it did not wait for each.
	wait.For(t, "every event handed on", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handed) == 3
	})
	ackPending := func() int {
		cons, err := b.JS.Consumer(context.Background(), events.StreamResults, "ack-when-batch")
		if err != nil {
			t.Fatal(err)
		}
		ci, err := cons.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumAckPending
	}
	mu.Lock()
	handed[0] <- nil
	handed[2] <- nil
	mu.Unlock()
	if n := ackPending(); n != 1 {
		t.Fatalf("%d messages awaiting acknowledgement with one event's work not done, want 1", n)
	}
	mu.Lock()
	handed[1] <- nil
	mu.Unlock()
	settled(t, b, "ack-when-batch")
	mu.Lock()
	defer mu.Unlock()
	if len(handed) != 3 {
		t.Errorf("the batch's events were handled %d times, want 3", len(handed))
	}
}
