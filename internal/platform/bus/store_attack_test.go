package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// smallBus is a bus with 1MiB on disk and 256KiB in memory, which a test
// fills in a moment.
func smallBus(t *testing.T) *bus.Bus {
	t.Helper()
	return bustest.StartLimited(t, bus.Limits{MaxStore: 1 << 20, MaxMemory: 256 << 10}).Connect(t, nil)
}

func streamInfo(t *testing.T, b *bus.Bus, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

func task(n int) events.Event {
	due := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return events.New(fmt.Sprintf("web%d/%d", n%50, n), "test", due, &events.ProbeTask{
		Server: fmt.Sprintf("web%d", n%50), Location: "lon1", Check: "https://web.example.net/" + strings.Repeat("x", 200),
		TimeoutMS: 1000, Slot: int64(n), Due: due, Purpose: events.PurposeScheduled,
	})
}

func note(n int) events.Event {
	at := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
	return events.New(fmt.Sprintf("inc1/note/%d", n), "test", at, &events.IncidentNote{
		Incident: "inc1", Seq: int64(n + 1), Status: events.NoteIdentified, Message: strings.Repeat("A disk failed. ", 60), By: "Alice", At: at,
	})
}

// TestAttackFullTaskQueueDropsOldest floods the probe tasks far past their
// room: every publish is taken, the oldest tasks make way, the newest are
// there to be run.
func TestAttackFullTaskQueueDropsOldest(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx := context.Background()
	const n = 2000 // ~300 bytes each: four times the 128KiB the tasks have (half the memory; the windows have the other half)
	for i := range n {
		if err := b.Publish(ctx, task(i)); err != nil {
			t.Fatalf("task %d refused: %v", i, err)
		}
	}
	info := streamInfo(t, b, events.StreamTasks)
	if info.Config.MaxBytes != 128<<10 || info.Config.Discard != jetstream.DiscardOld {
		t.Fatalf("tasks stream: max_bytes %d, discard %v; want 128KiB, old", info.Config.MaxBytes, info.Config.Discard)
	}
	if info.State.Bytes > uint64(info.Config.MaxBytes) {
		t.Errorf("tasks hold %d bytes, over their %d", info.State.Bytes, info.Config.MaxBytes)
	}
	if info.State.FirstSeq == 1 || info.State.LastSeq != n {
		t.Errorf("tasks kept sequences %d to %d of 1 to %d: want the oldest gone and the newest kept", info.State.FirstSeq, info.State.LastSeq, n)
	}
}

// TestAttackFullScheduleDropsOldest floods the windows of scheduled
// checks past their room: every window is taken, the oldest make way.
func TestAttackFullScheduleDropsOldest(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx := context.Background()
	const n = 1000 // ~400 bytes each: three times the 128KiB the windows have
	start := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	for i := range n {
		ws := &events.ProbeSchedule{Start: start.Add(time.Duration(i) * time.Second), WindowMS: 1000, Locations: []string{"lon1", "ams1"}}
		for j := range 6 {
			ws.Checks = append(ws.Checks, events.ScheduledCheck{Server: fmt.Sprintf("web%d", j), Location: j % 2, Slot: int64(i), DueMS: int64(j * 100)})
		}
		if err := b.Publish(ctx, events.New(events.ScheduleID(int64(i), 0), "test", ws.Start, ws)); err != nil {
			t.Fatalf("window %d refused: %v", i, err)
		}
	}
	info := streamInfo(t, b, events.StreamSchedule)
	if info.Config.MaxBytes != 128<<10 || info.Config.Discard != jetstream.DiscardOld {
		t.Fatalf("schedule stream: max_bytes %d, discard %v; want 128KiB, old", info.Config.MaxBytes, info.Config.Discard)
	}
	if info.State.Bytes > uint64(info.Config.MaxBytes) || info.State.FirstSeq == 1 || info.State.LastSeq != n {
		t.Errorf("windows hold %d bytes, sequences %d to %d of 1 to %d: want at most %d, the oldest gone and the newest kept",
			info.State.Bytes, info.State.FirstSeq, info.State.LastSeq, n, info.Config.MaxBytes)
	}
}

// TestAttackFullResultsDropOldest floods the results: publishing goes on,
// the oldest results make way.
func TestAttackFullResultsDropOldest(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx := context.Background()
	const n = 1500 // ~330 bytes each: more than twice the results' share of 1MiB
	for i := range n {
		if err := b.Publish(ctx, result(fmt.Sprintf("web%d", i%40), i)); err != nil {
			t.Fatalf("result %d refused: %v", i, err)
		}
	}
	info := streamInfo(t, b, events.StreamResults)
	if info.Config.MaxBytes <= 0 || info.State.Bytes > uint64(info.Config.MaxBytes) {
		t.Errorf("results hold %d bytes, over their max of %d", info.State.Bytes, info.Config.MaxBytes)
	}
	if info.State.FirstSeq == 1 || info.State.LastSeq != n {
		t.Errorf("results kept sequences %d to %d of 1 to %d: want the oldest gone and the newest kept", info.State.FirstSeq, info.State.LastSeq, n)
	}
}

// TestAttackFullEventsRefuse floods the incidents' stream: once full it
// refuses, with an error that says which stream is full and what to do,
// and keeps every event it had, the first one too.
func TestAttackFullEventsRefuse(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx := context.Background()
	var refused error
	stored := 0
	for i := range 2000 { // ~1.1kB each: 2MB, twice the whole store
		if err := b.Publish(ctx, note(i)); err != nil {
			refused = err
			break
		}
		stored++
	}
	if refused == nil {
		t.Fatal("the events stream took 2MB on a 1MiB store")
	}
	if !errors.Is(refused, bus.ErrStoreFull) || !bus.IsStoreFull(refused) {
		t.Errorf("the refusal is not ErrStoreFull: %v", refused)
	}
	for _, want := range []string{"stream TOCSIN_EVENTS is full", "rather than drop", "bus.max_store"} {
		if !strings.Contains(refused.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, refused)
		}
	}
	info := streamInfo(t, b, events.StreamEvents)
	if info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("events stream discard policy %v, want new", info.Config.Discard)
	}
	if info.State.FirstSeq != 1 || info.State.Msgs != uint64(stored) {
		t.Errorf("events stream kept %d messages from sequence %d, want all %d from 1", info.State.Msgs, info.State.FirstSeq, stored)
	}
	// Refused again, not made room for.
	if err := b.Publish(ctx, note(stored+1)); !errors.Is(err, bus.ErrStoreFull) {
		t.Errorf("a second event on the full stream: %v, want ErrStoreFull", err)
	}
}

// TestAttackFullBucketRefusesNewKeys fills the deliveries bucket with new
// keys: it refuses the next, keeps the first, and a key already there can
// still be written.
func TestAttackFullBucketRefusesNewKeys(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx := context.Background()
	kv, err := b.KV(ctx, events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("d", 1000))
	var refused error
	for i := range 1000 { // 1MB: twelve times the bucket's share
		if _, err := kv.Put(ctx, fmt.Sprintf("n%d", i), value); err != nil {
			refused = err
			break
		}
	}
	if !bus.IsStoreFull(refused) {
		t.Fatalf("the full deliveries bucket: %v, want a refusal for room", refused)
	}
	if _, err := kv.Get(ctx, "n0"); err != nil {
		t.Errorf("the first record is gone: %v", err)
	}
	if _, err := kv.Put(ctx, "n0", value); err != nil {
		t.Errorf("a record already there cannot be written again: %v", err)
	}
}

// TestAttackOversizedMessagesRefused: one message cannot take a stream's
// room, whoever publishes it.
func TestAttackOversizedMessagesRefused(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	if _, err := b.JS.Publish(ctx, "probe.result.web1", make([]byte, 100<<10)); !errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		t.Errorf("a 100kB result: %v, want it refused for its size", err)
	}
	if _, err := b.JS.Publish(ctx, "probe.task.lon1", make([]byte, 100<<10)); !errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum) {
		t.Errorf("a 100kB task: %v, want it refused for its size", err)
	}
	kv, err := b.KV(ctx, events.BucketLocations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "lon1.x", make([]byte, 100<<10)); err == nil {
		t.Error("a 100kB heartbeat was stored")
	}
}

// TestAttackEnsureBoundsStreamsMadeBefore: streams and buckets made by an
// earlier version, without limits, are given theirs at the next start.
func TestAttackEnsureBoundsStreamsMadeBefore(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	old, err := bus.Connect(srv.URL, nil, "old", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer old.NC.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, cfg := range events.StreamConfigs(1) {
		cfg.MaxBytes, cfg.MaxMsgSize, cfg.Discard = 0, 0, jetstream.DiscardOld
		if _, err := old.JS.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range events.BucketConfigs(1) {
		cfg.MaxBytes, cfg.MaxValueSize = 0, 0
		if _, err := old.JS.CreateKeyValue(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}

	b := srv.Connect(t, nil) // ensures
	usage, err := b.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(usage), len(events.StreamConfigs(1))+len(events.BucketConfigs(1)); got != want {
		t.Errorf("Usage has %d streams and buckets, want %d", got, want)
	}
	var total int64
	for _, u := range usage {
		info := streamInfo(t, b, u.Stream)
		if info.Config.MaxBytes <= 0 || info.Config.MaxMsgSize <= 0 {
			t.Errorf("%s is still unbounded: max_bytes %d, max_msg_size %d", u.Stream, info.Config.MaxBytes, info.Config.MaxMsgSize)
		}
		if u.MaxBytes != info.Config.MaxBytes {
			t.Errorf("Usage says %s keeps %d bytes, the stream %d", u.Stream, u.MaxBytes, info.Config.MaxBytes)
		}
		if info.Config.Storage == jetstream.FileStorage {
			total += info.Config.MaxBytes
		}
	}
	if total > config.DefaultMaxStore || total < config.DefaultMaxStore-1<<20 {
		t.Errorf("the streams on file share %d bytes, want about the default %d", total, config.DefaultMaxStore)
	}
	if d := streamInfo(t, b, events.StreamEvents).Config.Discard; d != jetstream.DiscardNew {
		t.Errorf("events stream made before: discard %v after the update, want new", d)
	}
}

// TestAttackStoreFillWarned: a stream past 80% of its room is reported.
func TestAttackStoreFillWarned(t *testing.T) {
	t.Parallel()
	b := smallBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	over := make(chan bus.StreamUsage, 20)
	go b.WatchUsage(ctx, 20*time.Millisecond, func(u bus.StreamUsage) { over <- u })
	for i := 0; ; i++ {
		if err := b.Publish(ctx, note(i)); err != nil {
			break
		}
	}
	select {
	case u := <-over:
		if u.Stream != events.StreamEvents || u.Fill() < bus.WarnFill {
			t.Errorf("warned of %s at %.2f full, want %s past %.1f", u.Stream, u.Fill(), events.StreamEvents, bus.WarnFill)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no warning of the full events stream")
	}
}
