package bus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// single is server's n-th result, on its own.
func single(server string, n int) events.Event {
	at := time.Date(2026, 11, 21, 2, 0, n, 0, time.UTC)
	task := fmt.Sprintf("%s/%d", server, n)
	return events.New(task+"/result", "test", at, &events.ProbeResult{
		Server: server, Location: "lon1", Task: task, Purpose: events.PurposeScheduled, Started: at, OK: true,
	})
}

// batchOf is the n-th result of each server, in one batch of lon1's.
func batchOf(t *testing.T, n int, servers ...string) events.Event {
	t.Helper()
	start := time.Date(2026, 11, 21, 2, 0, n, 0, time.UTC)
	bt := &events.ProbeResultBatch{Location: "lon1", Start: start}
	for _, s := range servers {
		it, ok := events.Item(single(s, n).Data.(*events.ProbeResult), start)
		if !ok {
			t.Fatalf("%s cannot be batched", s)
		}
		bt.Items = append(bt.Items, it)
	}
	return events.New(fmt.Sprintf("lon1/test/%d", n), "prober@lon1", start, bt)
}

// splitting is a keyed consumer of results that takes batches apart.
func splitting(name string) bus.Consumer {
	c := resultsConsumer(name)
	c.Workers = 4
	c.Key = events.ResultServer
	c.Batched, c.Split = events.IsResultBatch, events.Results
	return c
}

// record counts and orders what a handler is given, by server.
type record struct {
	mu    sync.Mutex
	seen  map[string][]int // server → the n of each result handled, in order
	count int
}

func (r *record) add(ev events.Event) {
	p := ev.Data.(*events.ProbeResult)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string][]int{}
	}
	r.seen[p.Server] = append(r.seen[p.Server], p.Started.Second())
	r.count++
}

func (r *record) handled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

func (r *record) of(server string) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen[server])
}

// want checks the n of each server's results handled, in order.
func (r *record) want(t *testing.T, handled map[string][]int) {
	t.Helper()
	for server, want := range handled {
		if got := r.of(server); !slices.Equal(got, want) {
			t.Errorf("server %s: results handled in order %v, want %v", server, got, want)
		}
	}
}

func publishAll(t *testing.T, b *bus.Bus, evs ...events.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := b.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

// settled waits until the consumer has nothing pending or unacknowledged.
func settled(t *testing.T, b *bus.Bus, name string) {
	t.Helper()
	wait.For(t, name+" to acknowledge everything", func() bool {
		c, err := b.JS.Consumer(context.Background(), events.StreamResults, name)
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream > 0
	})
}

func TestBatchEventsGoToTheirKeysInOrder(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var rec record
	consume(t, b, splitting("split-order"), func(ctx context.Context, ev events.Event) error {
		rec.add(ev)
		return nil
	})
	publishAll(t, b,
		single("a", 1), single("b", 1),
		batchOf(t, 2, "a", "b", "c", "d", "e", "f", "g", "h"),
		single("a", 3), batchOf(t, 4, "b", "a"), single("b", 5), single("c", 5),
	)
	wait.For(t, "every result to be handled", func() bool { return rec.handled() == 15 })
	rec.want(t, map[string][]int{"a": {1, 2, 3, 4}, "b": {1, 2, 4, 5}, "c": {2, 5}, "h": {2}})
	settled(t, b, "split-order")
}

func TestBatchWithAFailureIsHandledAgain(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var rec record
	var mu sync.Mutex
	failed := false
	consume(t, b, splitting("split-retry"), func(ctx context.Context, ev events.Event) error {
		if ev.Data.(*events.ProbeResult).Server == "flaky" {
			mu.Lock()
			first := !failed
			failed = true
			mu.Unlock()
			if first {
				return errors.New("bucket unavailable")
			}
		}
		rec.add(ev)
		return nil
	})
	publishAll(t, b, batchOf(t, 1, "x", "flaky", "y"))
	settled(t, b, "split-retry")
	// Redelivered whole: what succeeded the first time is handled again.
	rec.want(t, map[string][]int{"x": {1, 1}, "flaky": {1}, "y": {1, 1}})
}

func TestBatchEventRefusedIsSetAsideAlone(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var rec record
	consume(t, b, splitting("split-dead"), func(ctx context.Context, ev events.Event) error {
		if ev.Data.(*events.ProbeResult).Server == "refused" {
			return bus.Permanent(errors.New("a result from nowhere"))
		}
		rec.add(ev)
		return nil
	})
	publishAll(t, b, batchOf(t, 1, "p", "refused", "q"))
	dead := deadLetters(t, b, "split-dead", 1)[0]
	h := dead.Headers()
	if got := h.Get(events.HeaderDeadReason); !strings.Contains(got, "a result from nowhere") {
		t.Errorf("set aside for %q", got)
	}
	if h.Get(events.HeaderDeadSubject) != "probe.result.refused.lon1" || h.Get(events.HeaderDeadItem) != "1" {
		t.Errorf("set aside with headers %v, want the event's own subject and place", h)
	}
	ev, err := events.Decode(h.Get(events.HeaderDeadSubject), dead.Data())
	if err != nil || ev.ID != "refused/1/result" {
		t.Errorf("set aside %q (%v), want the refused result alone", dead.Data(), err)
	}
	settled(t, b, "split-dead")
	rec.want(t, map[string][]int{"p": {1}, "q": {1}})
}

func TestBatchUndecodableIsSetAsideWhole(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var rec record
	consume(t, b, splitting("split-garbled"), func(ctx context.Context, ev events.Event) error {
		rec.add(ev)
		return nil
	})
	ctx := context.Background()
	if _, err := b.JS.Publish(ctx, events.SubjectProbeResultBatch("lon1"), []byte(`{"not":"json`)); err != nil {
		t.Fatal(err)
	}
	// Another location's batch, on lon1's subject: what lon1's prober may
	// publish, claiming to be ams1's.
	forged := batchOf(t, 1, "p", "q")
	forged.Data.(*events.ProbeResultBatch).Location = "ams1"
	data, err := forged.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, events.SubjectProbeResultBatch("lon1"), data, jetstream.WithMsgID("forged")); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, m := range deadLetters(t, b, "split-garbled", 2) {
		if m.Headers().Get(events.HeaderDeadSubject) != events.SubjectProbeResultBatch("lon1") || m.Headers().Get(events.HeaderDeadItem) != "" {
			t.Errorf("set aside with headers %v, want the whole message", m.Headers())
		}
		reasons[m.Headers().Get(events.HeaderDeadReason)] = true
	}
	for _, want := range []string{"malformed envelope", `belongs on "probe.result._batch.ams1"`} {
		found := false
		for r := range reasons {
			found = found || strings.Contains(r, want)
		}
		if !found {
			t.Errorf("no message set aside for %q: %v", want, reasons)
		}
	}
	settled(t, b, "split-garbled")
	if n := rec.handled(); n != 0 {
		t.Errorf("%d events of a refused message were handled", n)
	}
}
