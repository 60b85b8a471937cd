package escalator

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestUnreadableRecordIsNotNotDone: when the record of a post cannot be
// read (here, a read with no time left), the post is not made: the step
// is retried, never taken as "not done yet", which would post twice.
func TestUnreadableRecordIsNotNotDone(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 1s}")
	kv, err := w.b.KV(context.Background(), events.BucketEscalations)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(w.cfg, Deps{Bus: w.b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(context.Background(), "i.x.opened", []byte("1790000000000000000")); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	acted := 0
	if _, err := e.once(gone, kv, "i.x.opened", func() (string, error) { acted++; return "2", nil }); err == nil || acted != 0 {
		t.Errorf("a record that could not be read: err %v, acted %d times; want an error and no action", err, acted)
	}
	if id, err := e.once(context.Background(), kv, "i.x.opened", func() (string, error) { acted++; return "2", nil }); err != nil || id != "1790000000000000000" || acted != 0 {
		t.Errorf("a record that was read: %q, %v, acted %d times", id, err, acted)
	}
}
