package notifier

import (
	"context"
	"strings"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestUnreadableDeliveryRecord: a delivery record that cannot be read says
// the message was tried, not how it went. It is neither sent again (a
// second page) nor taken as sent (a page silenced): the event is retried
// with an error that names the record, the record is left as it is, and
// the others are told once. Once the record is removed, the retry sends it.
func TestUnreadableDeliveryRecord(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, record string }{
		{"not JSON", "{not json"},
		{"JSON null", "null"},
		{"no outcome", `{"channel":"email","staff":"Alice"}`},
		{"a field of another type", `{"outcome":7}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			kv, err := f.b.KV(ctx, events.BucketDeliveries)
			if err != nil {
				t.Fatal(err)
			}
			key := "20261121-abcdef.opened.email." + staffKey(f.n.cfg.Staff[0])
			if _, err := kv.Put(ctx, key, []byte(tt.record)); err != nil {
				t.Fatal(err)
			}
			emails := func() map[string]int {
				got := map[string]int{}
				for _, m := range f.mail.Messages() {
					got[m.To[0]]++
				}
				return got
			}
			for range 2 {
				err := f.handle(t, opened())
				if err == nil || bus.IsPermanent(err) || !strings.Contains(err.Error(), key+" cannot be read") {
					t.Fatalf("handle with Alice's record unreadable: %v; want a retryable error naming the record", err)
				}
				if got := emails(); got["alice@example.net"] != 0 || got["bob@example.net"] != 1 {
					t.Fatalf("emails %v: want none to Alice, whose record cannot be read, and one to Bob", got)
				}
			}
			if e, err := kv.Get(ctx, key); err != nil || string(e.Value()) != tt.record {
				t.Errorf("the unreadable record was changed: %v", err)
			}
			// Whoever repairs the bucket removes the record.
			if err := kv.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := f.handle(t, opened()); err != nil {
				t.Fatal(err)
			}
			if got := emails(); got["alice@example.net"] != 1 || got["bob@example.net"] != 1 {
				t.Errorf("emails %v after the record was removed: want one each", got)
			}
		})
	}
}
