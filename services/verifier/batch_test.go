package verifier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// batchAt is the n-th check of each server, all successes, in one batch
// of location's, the n-th second after clock.
func batchAt(t *testing.T, location string, n int, started time.Time, servers ...string) events.Event {
	t.Helper()
	bt := &events.ProbeResultBatch{Location: location, Start: started}
	for _, s := range servers {
		r := &events.ProbeResult{Server: s, Location: location, Check: "tcp://127.0.0.1:25", Task: fmt.Sprintf("%s/%d", s, n),
			Purpose: events.PurposeScheduled, Started: started, LatencyMS: 1.25, OK: true}
		it, ok := events.Item(r, started)
		if !ok {
			t.Fatal("a success cannot be batched")
		}
		bt.Items = append(bt.Items, it)
	}
	return events.New(fmt.Sprintf("%s/test/%d", location, n), "prober@"+location, started, bt)
}

func publishBatch(t *testing.T, b *bus.Bus, location string, n int, servers ...string) {
	t.Helper()
	ev := batchAt(t, location, n, clock.Add(time.Duration(n)*time.Second), servers...)
	if err := b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// TestBatchedResultsJudgedAsSingles: successes that come in batches are
// judged as if each had come alone, in order with the failures that come
// on their own: a failure confirmed opens an incident, and successes in
// batches resolve it.
func TestBatchedResultsJudgedAsSingles(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, testConfig(t))
	publishBatch(t, b, "lon1", 1, "mx1", "mx2")
	waitState(t, b, "mx1", events.StateUp)
	waitState(t, b, "mx2", events.StateUp)
	publishResult(t, b, "mx1", 2, false)
	answer(t, b, "mx1", 3, false)
	waitState(t, b, "mx1", events.StateDown)
	publishBatch(t, b, "lon1", 4, "mx2", "mx1")
	publishBatch(t, b, "lon1", 5, "mx1", "mx2")
	waitState(t, b, "mx1", events.StateUp)
	got := incidentEvents(t, b, 2)
	if len(got) != 2 || !matches(got[0], "incident.*.opened") || !matches(got[1], "incident.*.resolved") {
		t.Errorf("incident events %v, want opened then resolved", got)
	}
}

// TestForgedBatches: a batch on one location's subject claiming to be
// another's is set aside whole; a batch of a location the config does not
// name, and a result of a batch dated half an hour ahead, are set aside
// alone, and the others of that batch judged.
func TestForgedBatches(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, testConfig(t))
	ctx := context.Background()

	claims := batchAt(t, "ams1", 1, clock.Add(time.Second), "mx1")
	data, err := claims.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, events.SubjectProbeResultBatch("lon1"), data, jetstream.WithMsgID(claims.ID)); err != nil {
		t.Fatal(err)
	}
	publishBatch(t, b, "zzz9", 2, "mx1")
	// mx1's result half an hour ahead of now, mx2's now.
	ahead := batchAt(t, "lon1", 3, time.Now(), "mx1", "mx2")
	ahead.Data.(*events.ProbeResultBatch).Items[0].At = (30 * time.Minute).Microseconds()
	if err := b.Publish(ctx, ahead); err != nil {
		t.Fatal(err)
	}
	c, err := b.JS.OrderedConsumer(ctx, events.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for range 3 {
		m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("dead letters so far %q: %v", reasons, err)
		}
		reasons = append(reasons, m.Headers().Get(events.HeaderDeadSubject)+": "+m.Headers().Get(events.HeaderDeadReason))
	}
	got := strings.Join(reasons, "\n")
	for _, want := range []string{
		`probe.result._batch.lon1: probe.result_batch event "ams1/test/1" belongs on "probe.result._batch.ams1"`,
		`probe.result.mx1.zzz9: a result from "zzz9", which is not one of the config's locations`,
		`probe.result.mx1.lon1: a result taken 30m0s ahead`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("dead letters lack %q:\n%s", want, got)
		}
	}
	// The real result beside the forged one is judged; nothing forged
	// moved a server: mx1's first real result is judged too.
	waitState(t, b, "mx2", events.StateUp)
	publishResult(t, b, "mx1", 4, true)
	waitState(t, b, "mx1", events.StateUp)
}
