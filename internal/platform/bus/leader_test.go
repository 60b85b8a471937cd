package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// behind is a bucket whose reads come from a replica one write behind its
// leader, as a direct get on a cluster may.
type behind struct{ jetstream.KeyValue }

func (k behind) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	h, err := k.History(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(h) < 2 {
		return nil, jetstream.ErrKeyNotFound
	}
	return h[len(h)-2], nil
}

// TestNothingToDoIsDecidedOnTheLeadersRecord: a change that finds nothing
// to do on a record read from a replica behind (a server leaving an
// incident it joined in the write the replica has not applied yet) is
// decided again on the leader's record, and done. Decided on the stale
// read alone, it would be lost: no compare-and-set checks a write that
// never happens.
func TestNothingToDoIsDecidedOnTheLeadersRecord(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	bustest.Put(t, b, events.BucketBoxes, "mx", counter{Box: "mx", N: 1})
	bustest.Put(t, b, events.BucketBoxes, "mx", counter{Box: "mx", N: 2}) // "joined"
	stale := rs
	stale.KV = behind{rs.KV}
	var sawStale bool
	// "Leave": only a record that has the join has anything to do.
	leave := func(c *counter) ([]bus.Outgoing, bool, error) {
		if c.N < 2 {
			sawStale = true
			return nil, false, nil
		}
		return step(c)
	}
	ctx := context.Background()
	got, _, err := bus.Change(ctx, stale, "mx", leave)
	if err != nil {
		t.Fatal(err)
	}
	if !sawStale {
		t.Fatal("the change never saw the stale record: the test proves nothing")
	}
	if got.N != 3 {
		t.Errorf("record left at step %d: the change decided on the stale record was lost", got.N)
	}
	var stored counter
	if _, err := rs.Read(ctx, "mx", &stored); err != nil || stored.N != 3 {
		t.Errorf("stored %+v, %v: want step 3", stored, err)
	}
	if ids := published(t, b); len(ids) != 1 || ids[0] != "mx/state/3" {
		t.Errorf("published %v, want mx/state/3", ids)
	}

	// A decision not to write taken on the leader's own record stands: one
	// leader read, no loop.
	if _, _, err := bus.Change(ctx, rs, "mx", func(*counter) ([]bus.Outgoing, bool, error) { return nil, false, nil }); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderReadOnACluster: on a bucket of three replicas, a leader read
// made through any server of the cluster, the moment after a write
// through another, reaches the leader and sees that write. (Whether a
// direct get there would have missed it depends on timing: the test
// cannot make a replica lag, so the re-decision itself is tested with
// TestNothingToDoIsDecidedOnTheLeadersRecord.)
func TestLeaderReadOnACluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	urls := startCluster(t, 3)
	// Written through one server, read through each of the others in turn.
	var kvs []jetstream.KeyValue
	var readers []bus.Records
	for i, u := range urls {
		js := jsAt(t, u)
		var kv jetstream.KeyValue
		onCluster(t, ctx, "a replicated bucket", func(c context.Context) (err error) {
			if i == 0 {
				kv, err = js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "leader", Replicas: 3})
			} else {
				kv, err = js.KeyValue(c, "leader")
			}
			return err
		})
		kvs = append(kvs, kv)
		readers = append(readers, bus.Records{Bus: &bus.Bus{NC: js.Conn(), JS: js}, KV: kv, Log: slog.New(slog.DiscardHandler)})
	}
	rev := uint64(0)
	for i := int64(1); i <= 100; i++ {
		var err error
		if rev, err = bus.PutJSON(ctx, kvs[0], "k", counter{Box: "mx", N: i}, rev); err != nil {
			t.Fatal(err)
		}
		var c counter
		got, err := readers[1+i%2].ReadLeader(ctx, "k", &c)
		if err != nil || got != rev || c.N != i {
			t.Fatalf("write %d at %d, read from the leader through another server: %d, %+v, %v", i, rev, got, c, err)
		}
	}
}

// TestReadLeader: a key never written and a key deleted read as new, as
// Read has them; a written one reads as written.
func TestReadLeader(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	rs, _ := records(t, b)
	ctx := context.Background()
	var c counter
	if rev, err := rs.ReadLeader(ctx, "none", &c); err != nil || rev != 0 || c.N != 0 {
		t.Errorf("a key never written: %d, %+v, %v", rev, c, err)
	}
	rev, err := bus.PutJSON(ctx, rs.KV, "mx", counter{Box: "mx", N: 7}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rs.ReadLeader(ctx, "mx", &c); err != nil || got != rev || c.N != 7 {
		t.Errorf("a key written at %d: %d, %+v, %v", rev, got, c, err)
	}
	if err := rs.KV.Delete(ctx, "mx"); err != nil {
		t.Fatal(err)
	}
	c = counter{}
	if got, err := rs.ReadLeader(ctx, "mx", &c); err != nil || got != 0 || c.N != 0 {
		t.Errorf("a key deleted: %d, %+v, %v", got, c, err)
	}
	for _, key := range []string{"m*", "m.>", ".mx", "mx.", "m x"} {
		if _, err := rs.ReadLeader(ctx, key, &c); !errors.Is(err, jetstream.ErrInvalidKey) {
			t.Errorf("key %q: %v, want it refused as invalid", key, err)
		}
	}
}
