package bus

import "time"

// MaxRetryAfter bounds how long a provider's Retry-After may hold a
// message back: a provider that asks for an hour (or whose clock is wrong)
// must not silence an alarm for that long. Past this the message is tried
// again, and the provider may say no again.
const MaxRetryAfter = 5 * time.Minute

// ProviderError is a call to an outside provider (an SMTP server, Twilio,
// X, Facebook) that failed, as the adapter that made it classified it.
// Every adapter returns this one type, so that the consume loop and the
// services read a failure the same way whichever provider it came from.
//
// A ProviderError with Retry false counts as Permanent: the message is
// set aside rather than tried again. One with Retry true is tried again,
// no sooner than RetryAfter (bounded by MaxRetryAfter) when it is set.
type ProviderError struct {
	// Status is the provider's answer: an HTTP status, or an SMTP reply
	// code; 0 when no answer came (a timeout, a refused connection) or
	// when the request was refused before it was sent.
	Status int
	// Retry says whether trying again may succeed: true for 5xx, 408
	// and 429 answers, timeouts and connection failures; false for other
	// 4xx answers and requests refused before sending.
	Retry bool
	// RetryAfter is how long the provider asked to be left alone; 0
	// when it did not say.
	RetryAfter time.Duration
	// Text is what went wrong, scrubbed of secrets and addresses by the
	// adapter; Error returns it.
	Text string
	// Err is the cause, for errors.Is and errors.As; its own text may
	// hold what Text leaves out, so it is never printed by this type.
	Err error
}

func (e *ProviderError) Error() string {
	if e.Text == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Text
}

func (e *ProviderError) Unwrap() error { return e.Err }

// Retryable reports whether trying again may succeed after err: a
// ProviderError says so itself; any other error is retryable unless it is
// marked Permanent.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	return !IsPermanent(err)
}

// RetryAfter is how long to wait before trying again after err: the
// longest Retry-After of the retryable provider errors it holds (joined
// ones included), bounded by MaxRetryAfter; 0 when none asked for a wait.
func RetryAfter(err error) time.Duration {
	var d time.Duration
	walk(err, func(e error) {
		if p, ok := e.(*ProviderError); ok && p.Retry {
			d = max(d, p.RetryAfter)
		}
	})
	return min(max(d, 0), MaxRetryAfter)
}

// walk calls f on err and every error it wraps, through joins.
func walk(err error, f func(error)) {
	for err != nil {
		f(err)
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e, f)
			}
			return
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		default:
			return
		}
	}
}
