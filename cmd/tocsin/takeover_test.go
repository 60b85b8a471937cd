package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestTakeOverFlag checks that --take-over reaches JetStream: the
// verifier's consumer moves to a standby after that long, not the default.
func TestTakeOverFlag(t *testing.T) {
	srv := bustest.Start(t)
	cfg, code := loadConfig("../../deploy/tocsin.example.yaml", io.Discard, testEnv)
	if cfg == nil {
		t.Fatalf("load the example config: exit %d", code)
	}
	f, err := parseRunFlags([]string{"--nats", srv.URL, "--services", "verifier", "--take-over", "2s", "--data", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServices(ctx, cfg, f, slog.New(slog.DiscardHandler), nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	b := srv.Connect(t, slog.New(slog.DiscardHandler))
	var got time.Duration
	// The verifier makes its consumer once it has started: after the
	// streams are ready, which takes a while on a loaded machine.
	wait.Within(t, time.Minute, "the verifier's consumer", func() bool {
		c, err := b.JS.Consumer(ctx, events.StreamResults, "verifier")
		if err == nil {
			got = c.CachedInfo().Config.PinnedTTL
		}
		return err == nil
	})
	if want := 2 * time.Second; got != want {
		t.Errorf("the verifier's consumer moves to a standby after %v, want %v (default %v)", got, want, bus.DefaultTakeOver)
	}
}
