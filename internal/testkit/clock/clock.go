// Package clock is a time that tests move by hand, for code that is given
// its clock as a now func() time.Time.
package clock

import (
	"sync"
	"time"
)

// Manual stands still until Advance moves it; safe for the code under
// test to read while the test moves it.
type Manual struct {
	mu  sync.Mutex
	now time.Time
}

// New is a clock standing at at.
func New(at time.Time) *Manual { return &Manual{now: at} }

// Now is where the clock stands: pass c.Now as the code's clock.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
