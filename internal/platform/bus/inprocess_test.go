package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// TestSameEventPublishedAtOnce: writers publishing the same held event at
// once on a cluster (two changes of one record each finding it held) all
// succeed, and it is stored once; JetStream refuses all but one while the
// first is in flight ("duplicate message id is in process").
func TestSameEventPublishedAtOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := clusterJS(t, 3)
	onCluster(t, ctx, "replicated stream", func(c context.Context) error {
		_, err := js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3, Duplicates: time.Minute})
		return err
	})
	b := &bus.Bus{NC: js.Conn(), JS: js}
	const writers, rounds = 8, 20
	failed := 0
	for round := range rounds {
		out := []bus.Outgoing{{Subject: "s.x", ID: "event-" + string(rune('a'+round)), Data: []byte("{}")}}
		errs := make(chan error, writers)
		for range writers {
			go func() { errs <- b.PublishHeld(ctx, out) }()
		}
		for range writers {
			if err := <-errs; err != nil {
				failed++
				t.Log(err)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d publishes of an event already being stored failed", failed, writers*rounds)
	}
	info, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != rounds {
		t.Errorf("%d messages stored, want %d: one per event", n, rounds)
	}
}
