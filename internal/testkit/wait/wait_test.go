package wait

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

type recorder struct{ failed string }

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestWait(t *testing.T) {
	var n atomic.Int32
	Within(t, time.Second, "the third look", func() bool { return n.Add(1) == 3 })
	if n.Load() != 3 {
		t.Errorf("condition looked at %d times, want 3", n.Load())
	}

	var r recorder
	Within(&r, 50*time.Millisecond, "never", func() bool { return false })
	if r.failed != "waited 50ms for never" {
		t.Errorf("failure = %q", r.failed)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Until(ctx, time.Hour, func() bool { return false }) {
		t.Error("Until held for a condition that never holds")
	}
}

// TestSpaced: within its pace a spaced condition is looked at once, and
// answers as that look did.
func TestSpaced(t *testing.T) {
	looks := 0
	cond := Spaced(time.Hour, func() bool { looks++; return looks == 1 })
	for range 100 {
		if !cond() {
			t.Fatal("a spaced condition changed its answer without a look")
		}
	}
	if looks != 1 {
		t.Errorf("%d looks within the pace, want 1", looks)
	}
}
