package verifier

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestStoreNearlyFullWarnsStaff: a stream of the bus past 80% full is a
// warning to staff, raised once however many times it is seen, and ended
// once the stream is back below 70%, not at 75%.
func TestStoreNearlyFullWarnsStaff(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	var fill atomic.Uint64 // in per cent
	fill.Store(85)
	looks := make(chan struct{}, 100)
	usage := func(context.Context) ([]bus.StreamUsage, error) {
		defer func() {
			select {
			case looks <- struct{}{}:
			default:
			}
		}()
		return []bus.StreamUsage{{Stream: events.StreamEvents, Bytes: fill.Load() * 1000, MaxBytes: 100_000}}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	v := New(testConfig(t), Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, WithStoreWatch(usage, 20*time.Millisecond))
	go func() { done <- v.Run(ctx) }()
	defer func() { cancel(); <-done }()

	got := incidentEvents(t, b, 1)
	if !strings.HasSuffix(got[0], ".opened") {
		t.Fatalf("incident events %v, want a warning opened", got)
	}
	look := func(n int) { // n more looks at the store
		for range n {
			select {
			case <-looks:
			case <-time.After(10 * time.Second):
				t.Fatal("the store is no longer looked at")
			}
		}
	}
	look(5)
	fill.Store(75)
	look(5)
	if got := incidentEvents(t, b, 1); len(got) != 1 {
		t.Fatalf("incident events %v: want the one warning, still open at 75%%", got)
	}
	fill.Store(60)
	incidentEvents(t, b, 2) // the resolution
	look(5)
	if got = incidentEvents(t, b, 2); len(got) != 2 || !strings.HasSuffix(got[1], ".resolved") || strings.Split(got[0], ".")[1] != strings.Split(got[1], ".")[1] {
		t.Errorf("incident events %v: want the warning opened, then resolved once", got)
	}
}
