// Package wait is how Tocsin's tests wait: for a condition to hold, checked
// often, up to a deadline that fails the test with what was awaited. Tests
// wait for the event they expect, never for a fixed time: a fixed sleep is
// too short on a busy machine and wasted on an idle one.
package wait

import (
	"context"
	"time"
)

// TB is the part of testing.TB a wait needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Default is how long For waits: long enough for a busy, shared machine
// running the race detector, short enough that a test that will never
// pass says so.
const Default = 15 * time.Second

// every is how often a condition is checked.
const every = 10 * time.Millisecond

// For waits until cond holds, up to Default, failing t with what otherwise.
func For(t TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Default, what, cond)
}

// Within waits until cond holds, up to d, failing t with what otherwise.
func Within(t TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(context.Background(), d, cond) {
		t.Fatalf("waited %s for %s", d, what)
	}
}

// Until waits until cond holds, up to d or until ctx ends, and says whether
// it held: for waits that are not a failure when they run out.
func Until(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// Spaced is cond looked at no more than once every d, for a look that is
// itself load on the system under test (tallying thousands of messages,
// reading the status page of a thousand servers): it keeps its own pace
// while the wait decides when to give up. Between looks it answers as the
// last look did.
func Spaced(d time.Duration, cond func() bool) func() bool {
	var last time.Time
	held := false
	return func() bool {
		if time.Since(last) < d {
			return held
		}
		last = time.Now()
		held = cond()
		return held
	}
}
