package bus

import (
	"context"
	"testing"
	"time"
)

// TestPlacementAttemptUnanswered: a create whose answer never comes (lost
// on a cluster still settling its routes) is given up after its own bound
// and tried again, instead of using up the whole start.
func TestPlacementAttemptUnanswered(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attempts := 0
	err := whenPlaceable(ctx, 100*time.Millisecond, func(actx context.Context) error {
		attempts++
		if attempts == 1 {
			<-actx.Done() // no answer
			return actx.Err()
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Errorf("after an unanswered attempt: %v, %d attempts; want success on the second", err, attempts)
	}

	// A start that is stopped is not tried again.
	stopped, stop := context.WithCancel(context.Background())
	stop()
	attempts = 0
	if err := whenPlaceable(stopped, time.Second, func(actx context.Context) error { attempts++; return actx.Err() }); err == nil || attempts != 1 {
		t.Errorf("stopped: %v after %d attempts; want its error after one", err, attempts)
	}
}
