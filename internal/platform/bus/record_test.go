package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// counter is a record that announces each step it takes.
type counter struct {
	Box string `json:"box"`
	N   int64  `json:"n"`
	bus.Outbox
}

var t0 = time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC)

// step is the change that moves a counter on by one and announces it.
func step(c *counter) ([]bus.Outgoing, bool, error) {
	c.Box = "mx"
	c.N++
	o, err := bus.Hold(events.New("mx/state/"+strconv.FormatInt(c.N, 10), "test", t0, &events.BoxStateChanged{Box: "mx", From: events.BoxOperational, To: events.BoxDegraded, Since: t0}), 0)
	return []bus.Outgoing{o}, true, err
}

func records(t *testing.T, b *bus.Bus) (bus.Records, *bytes.Buffer) {
	t.Helper()
	kv, err := b.KV(context.Background(), events.BucketBoxes)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	return bus.Records{Bus: b, KV: kv, Log: slog.New(slog.NewTextHandler(&log, nil))}, &log
}

// published is the ids of the box events on the stream.
func published(t *testing.T, b *bus.Bus) []string {
	t.Helper()
	c, err := b.JS.OrderedConsumer(context.Background(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectBoxChanges}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m := range batch.Messages() {
		ids = append(ids, m.Headers().Get(jetstream.MsgIDHeader))
	}
	return ids
}

// TestChange: the record is written with its event held, the event is
// published, and the record says so; nothing is published twice.
func TestChange(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	ctx := context.Background()
	for range 2 {
		if _, _, err := bus.Change(ctx, rs, "mx", step); err != nil {
			t.Fatal(err)
		}
	}
	var got counter
	if _, err := rs.Read(ctx, "mx", &got); err != nil {
		t.Fatal(err)
	}
	if got.N != 2 || len(got.Pending) != 0 {
		t.Errorf("record %+v: want two steps, nothing pending", got)
	}
	if ids := published(t, b); strings.Join(ids, " ") != "mx/state/1 mx/state/2" {
		t.Errorf("published %v, want each step once, in order", ids)
	}
}

// TestChangePublishesWhatWasLeft: events a crash left in the record go out
// before the next change's, even when the change writes nothing.
func TestChangePublishesWhatWasLeft(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	ctx := context.Background()
	rec := counter{Box: "mx", N: 1}
	o, err := bus.Hold(events.New("mx/state/1", "test", t0, &events.BoxStateChanged{Box: "mx", From: events.BoxOperational, To: events.BoxDown, Since: t0}), 0)
	if err != nil {
		t.Fatal(err)
	}
	rec.Pending = []bus.Outgoing{o}
	bustest.Put(t, b, events.BucketBoxes, "mx", rec)
	if _, _, err := bus.Change(ctx, rs, "mx", func(*counter) ([]bus.Outgoing, bool, error) { return nil, false, nil }); err != nil {
		t.Fatal(err)
	}
	if ids := published(t, b); strings.Join(ids, " ") != "mx/state/1" {
		t.Errorf("published %v, want what the record held", ids)
	}
	var got counter
	if _, err := rs.Read(ctx, "mx", &got); err != nil || len(got.Pending) != 0 {
		t.Errorf("record %+v, %v: want nothing pending", got, err)
	}
}

// TestChangeRaces: writers changing one record at once each take their
// step once: a writer that lost the race reads again and changes again.
func TestChangeRaces(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := bus.Change(context.Background(), rs, "mx", step); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var got counter
	if _, err := rs.Read(context.Background(), "mx", &got); err != nil || got.N != 8 {
		t.Errorf("record %+v, %v: want 8 steps", got, err)
	}
}

// TestCorruptRecord is the one policy for a record that cannot be read:
// it starts afresh, is overwritten, and the loss is logged as an error.
func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, log := records(t, b)
	ctx := context.Background()
	if _, err := rs.KV.Put(ctx, "mx", []byte(`{"n": "not a number"`)); err != nil {
		t.Fatal(err)
	}
	got, _, err := bus.Change(ctx, rs, "mx", step)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 1 {
		t.Errorf("record %+v: want started afresh, one step", got)
	}
	if !strings.Contains(log.String(), "level=ERROR") || !strings.Contains(log.String(), "unreadable") {
		t.Errorf("log %q: want the loss as an error", log)
	}
}

// TestCommit: a caller holding the revision writes at it, its work runs
// once the events are out, and the record is marked done; a stale
// revision is a conflict, and nothing is published.
func TestCommit(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	ctx := context.Background()
	var rec counter
	out, _, _ := step(&rec)
	rec.Pending = out
	ran := false
	written, final, err := rs.Commit(ctx, "mx", &rec, 0, func(context.Context, uint64) error { ran = true; return nil })
	if err != nil || written == 0 || final <= written || !ran {
		t.Fatalf("commit: written %d, final %d, ran %v, %v", written, final, ran, err)
	}
	out, _, _ = step(&rec)
	rec.Pending = out
	if _, _, err := rs.Commit(ctx, "mx", &rec, written, nil); !bus.IsConflict(err) {
		t.Errorf("commit at a stale revision: %v, want a conflict", err)
	}
	if ids := published(t, b); strings.Join(ids, " ") != "mx/state/1" {
		t.Errorf("published %v, want only the first commit's", ids)
	}
}
