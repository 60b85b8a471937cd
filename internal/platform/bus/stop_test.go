package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestStopsPromptlyWithoutItsServer: a consumer told to stop after its
// NATS server has gone returns at once, not after the client's 10 s flush
// timeout, so that a service stopping keeps its one shutdown deadline.
func TestStopsPromptlyWithoutItsServer(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.Consume(ctx, resultsConsumer("stops"), func(context.Context, events.Event) error { return nil })
	}()
	wait.For(t, "the consumer set up", func() bool {
		_, err := b.JS.Consumer(ctx, events.StreamResults, "stops")
		return err == nil
	})
	srv.NS.Shutdown()
	wait.For(t, "the connection lost", func() bool { return !b.NC.IsConnected() })
	cancel()
	var err error
	wait.Within(t, 5*time.Second, "Consume returned", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Errorf("Consume: %v", err)
	}
}
