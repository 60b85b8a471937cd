package locations_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// bucket is an empty locations bucket on a JetStream server of the test's
// own, and a context that ends with the test.
func bucket(t *testing.T) (context.Context, jetstream.KeyValue) {
	t.Helper()
	ctx := t.Context()
	kv, err := bustest.New(t).KV(ctx, events.BucketLocations)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, kv
}

// watch is a reader of kv that knows the locations named, once it has read
// what kv held.
func watch(ctx context.Context, t *testing.T, kv jetstream.KeyValue, names ...string) *locations.Live {
	t.Helper()
	live, err := locations.Watch(ctx, kv, time.Now, names)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return live
}

// TestLiveAt: a prober is live from its start until its heartbeat's TTL runs
// out, or until it withdraws; the answer for a past moment does not change
// as later heartbeats arrive.
func TestLiveAt(t *testing.T) {
	ctx, kv := bucket(t)
	live := watch(ctx, t, kv, "lon1", "ams1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := time.Now().Add(-time.Millisecond) // strictly before any heartbeat

	// lon1 beats once and falls silent, as a crashed prober does; ams1 beats
	// until it withdraws.
	hb, _ := json.Marshal(events.Heartbeat{Location: "lon1", Instance: "a", Since: time.Now(), TTLMS: 1500})
	if _, err := kv.Put(ctx, "lon1.a", hb); err != nil {
		t.Fatal(err)
	}
	actx, stopAms := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- locations.Announce(actx, kv, events.Heartbeat{Location: "ams1", Instance: "b", Since: time.Now(), TTLMS: 60_000}, 50*time.Millisecond, log)
	}()
	wait.For(t, "ams1 and lon1 live", func() bool { return slices.Equal(live.List(), []string{"ams1", "lon1"}) })
	during := time.Now()
	// A second beat of ams1 means its first write has returned: cancelled
	// before that, Announce reports the write it could not finish.
	first, err := kv.Get(ctx, "ams1.b")
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "a second beat of ams1", func() bool {
		e, err := kv.Get(ctx, "ams1.b")
		return err == nil && e.Revision() > first.Revision()
	})

	stopAms()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wait.For(t, "only lon1 live", func() bool { return slices.Equal(live.List(), []string{"lon1"}) })
	if got := live.At(during); !slices.Equal(got, []string{"ams1", "lon1"}) {
		t.Errorf("live at a past moment changed after ams1 withdrew: %v", got)
	}
	if got := live.At(before); len(got) != 0 {
		t.Errorf("live before anyone started = %v", got)
	}
	// lon1's one heartbeat runs out with nobody deleting it.
	wait.For(t, "no location live", func() bool { return len(live.List()) == 0 })
	if got := live.At(during); !slices.Equal(got, []string{"ams1", "lon1"}) {
		t.Errorf("live at a past moment changed after lon1's heartbeat ran out: %v", got)
	}
}

// TestReadersAgreeOnAGap: a prober silent past its heartbeat's TTL, then
// beating again (starved of the CPU, or cut off for a while), was not live
// in between, and stays so after it comes back; a reader that has settled
// on a moment answers for it as every other reader does, however late its
// watch runs.
func TestReadersAgreeOnAGap(t *testing.T) {
	ctx, kv := bucket(t)
	early := watch(ctx, t, kv, "lon1")
	put := func() time.Time {
		hb, _ := json.Marshal(events.Heartbeat{Location: "lon1", Instance: "a", Since: time.Now(), TTLMS: 200})
		e, err := kv.Put(ctx, "lon1.a", hb)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kv.GetRevision(ctx, "lon1.a", e)
		if err != nil {
			t.Fatal(err)
		}
		return got.Created()
	}
	first := put()
	wait.For(t, "the first heartbeat heard", func() bool { return len(early.At(first)) == 1 })
	gap := first.Add(300 * time.Millisecond)
	wait.For(t, "the gap to pass", func() bool { return time.Now().After(gap.Add(100 * time.Millisecond)) })
	again := put()

	late := watch(ctx, t, kv, "lon1")
	for name, l := range map[string]*locations.Live{"early": early, "late": late} {
		if err := l.Settled(ctx, again); err != nil {
			t.Fatal(err)
		}
		if got := l.At(gap); len(got) != 0 {
			t.Errorf("%s reader: live in the gap: %v", name, got)
		}
		if got := l.At(again); !slices.Equal(got, []string{"lon1"}) {
			t.Errorf("%s reader: live when it beat again = %v", name, got)
		}
	}
}

// TestAnnounceStoppedAtOnce: a prober stopped before its first heartbeat
// is written stops cleanly, and leaves no heartbeat behind.
func TestAnnounceStoppedAtOnce(t *testing.T) {
	_, kv := bucket(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hb := events.Heartbeat{Location: "lon1", Instance: "a", Since: time.Now(), TTLMS: 15_000}
	if err := locations.Announce(ctx, kv, hb, time.Second, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("Announce stopped before it began = %v, want nil", err)
	}
	if e, err := kv.Get(context.Background(), hb.Key()); err == nil && e.Operation() == jetstream.KeyValuePut {
		t.Errorf("a heartbeat was left behind: %s", e.Value())
	}
}
