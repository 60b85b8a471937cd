package bus

import (
	"errors"
	"fmt"
	"time"
)

// Later asks for the message to be handled again after d, without counting
// it as a failure: a durable timer. The message stays in JetStream, so the
// wait survives a restart; a notifier gathering a storm's updates, or
// repeating an unacknowledged page, waits this way.
func Later(d time.Duration) error { return laterError{max(d, time.Millisecond)} }

type laterError struct{ d time.Duration }

func (l laterError) Error() string { return fmt.Sprintf("handle again in %s", l.d) }

// IsLater reports whether err asks for the message again later, and when.
func IsLater(err error) (time.Duration, bool) {
	var l laterError
	if errors.As(err, &l) {
		return l.d, true
	}
	return 0, false
}
