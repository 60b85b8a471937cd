package bus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestSameEventPublishedAtOnce: writers publishing the same held event at
// once on a cluster (two changes of one record each finding it held) all
// succeed, and it is stored once; JetStream refuses all but one while the
// first is in flight ("duplicate message id is in process").
func TestSameEventPublishedAtOnce(t *testing.T) {
	t.Parallel()
	urls := startCluster(t, 3)
	nc, err := nats.Connect(strings.Join(urls, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !wait.Until(ctx, 30*time.Second, wait.Spaced(200*time.Millisecond, func() bool {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = js.CreateStream(c, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: 3, Duplicates: time.Minute})
		return err == nil
	})) {
		t.Fatalf("no replicated stream: %v", err)
	}
	b := &bus.Bus{NC: nc, JS: js}
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
