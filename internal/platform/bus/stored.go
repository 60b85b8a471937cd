package bus

import (
	"errors"
	"fmt"
	"time"
)

// AckWhen tells the consume loop that the handler's work is done but for
// something it handed on, whose outcome done will give: the message is
// acknowledged (or retried, or set aside, as for any error the handler
// could have returned) once done says so, and the worker goes on to the
// next message meanwhile. A prober's checked task waits this way for its
// result to be stored, in a batch with others, without holding a check
// slot. done must give one value, before the message's AckWait runs out:
// past it, the message is retried.
func AckWhen(done <-chan error) error { return ackWhen{done} }

type ackWhen struct{ done <-chan error }

func (ackWhen) Error() string { return "acknowledged when what it handed on is done" }

// isAckWhen reports whether err asks to wait for done.
func isAckWhen(err error) (<-chan error, bool) {
	var a ackWhen
	if errors.As(err, &a) && a.done != nil {
		return a.done, true
	}
	return nil, false
}

// AckWhenChannel is the channel an AckWhen error waits for: for a caller
// that waits itself (a prober's window waits for each of its checks'
// results) and for tests of a handler that hands its work on.
func AckWhenChannel(err error) (<-chan error, bool) { return isAckWhen(err) }

// await waits for what a handler handed on, until deadline, and says how
// it went.
func await(done <-chan error, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("what the handler handed on was not done within the ack wait")
	}
}
