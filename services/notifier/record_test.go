package notifier

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// lostAnswerKV is a real bucket whose first write goes unanswered, as one
// sent to a stream leader that dies before it replies: the write waits
// until its context ends and is not stored.
type lostAnswerKV struct {
	jetstream.KeyValue
	lost bool
}

func (kv *lostAnswerKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if !kv.lost {
		kv.lost = true
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return kv.KeyValue.Create(ctx, key, value, opts...)
}

// TestRecordOutlivesALostAnswer checks that a delivery record whose first
// write is lost is written by a later attempt within the handler's time,
// rather than the first attempt taking all of it: a message sent and not
// recorded would be sent again.
func TestRecordOutlivesALostAnswer(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	bucket, err := b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	kv := &lostAnswerKV{KeyValue: bucket}
	// A handler's time, well beyond one attempt's.
	ctx, cancel := context.WithTimeout(context.Background(), 4*recordAttemptTimeout)
	defer cancel()
	want := Delivery{Channel: "email", Staff: "Alice", Outcome: "sent"}
	(&Notifier{}).record(ctx, kv, "i1.opened.Alice.email", want, 0, slog.New(slog.DiscardHandler))

	e, err := bucket.Get(context.Background(), "i1.opened.Alice.email")
	if err != nil {
		t.Fatalf("the delivery was not recorded: %v", err)
	}
	var got Delivery
	if err := json.Unmarshal(e.Value(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Outcome != want.Outcome || got.Staff != want.Staff || got.Channel != want.Channel {
		t.Errorf("recorded %+v, want %+v", got, want)
	}
	if !kv.lost {
		t.Error("the first write was not the lost one")
	}
}
