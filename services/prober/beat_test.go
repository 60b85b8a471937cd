package prober

import (
	"testing"
	"time"
)

// A window's checks start on a beat: never before they fall due, at most
// one beat after, and those due within one beat together.
func TestChecksStartOnABeat(t *testing.T) {
	base := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		due, want time.Duration
	}{
		{0, 0},
		{time.Nanosecond, startBeat},
		{10 * time.Millisecond, startBeat},
		{startBeat - time.Nanosecond, startBeat},
		{startBeat, startBeat},
		{startBeat + time.Millisecond, 2 * startBeat},
	} {
		if got := onBeat(base.Add(c.due)).Sub(base); got != c.want {
			t.Errorf("a check due at +%v starts at +%v, want +%v", c.due, got, c.want)
		}
	}
}
