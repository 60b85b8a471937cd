package xapi

import (
	"time"
)

// Fault is how the stand-in fails a request instead of handling it, so
// that a test can see what its client makes of each way X fails. Faults
// apply to requests to POST /2/tweets that passed authentication.
type Fault struct {
	// Status is the HTTP status to answer with, 400 to 599.
	Status int
	// Detail is the "detail" of X's JSON error; empty picks X's text for
	// Status.
	Detail string
	// Reset is when X's rate-limit window starts again, sent with a 429
	// as x-rate-limit-reset in epoch seconds, with
	// x-rate-limit-remaining: 0; zero means 15 minutes on, X's usual
	// window.
	Reset time.Time
	// HTML, when set, is sent as the body with Content-Type text/html
	// instead of X's JSON, as a proxy or load balancer in front of X
	// answers.
	HTML string
	// Stall holds the request until the client gives up, Release is
	// called or the stand-in closes; the other fields are then ignored.
	Stall bool
}

// ServerError fails a request with status, such as 500 or 503, and X's
// JSON error for it.
func ServerError(status int) Fault { return Fault{Status: status} }

// RateLimited fails a request with 429 Too Many Requests, saying that the
// window starts again at reset (zero: 15 minutes on).
func RateLimited(reset time.Time) Fault { return Fault{Status: 429, Reset: reset} }

// Unauthorized fails a request with 401, as X answers when it no longer
// accepts the credentials: a token revoked, an app suspended.
func Unauthorized() Fault { return Fault{Status: 401} }

// Forbidden fails a request with 403 and detail, as X refuses a post it
// will never accept; empty detail picks X's text for an app that may not
// post. DetailDuplicate and DetailTooLong are X's texts for the two
// refusals the stand-in also makes on its own.
func Forbidden(detail string) Fault { return Fault{Status: 403, Detail: detail} }

// Stall holds a request until the client gives up, Release is called or
// the stand-in closes, as an X that has stopped answering would.
func Stall() Fault { return Fault{Stall: true} }

// Request is what a FailIf rule sees of a request to post.
type Request struct {
	// N counts the requests to post that passed authentication, from 1,
	// this one included.
	N int
	// Text and ReplyTo are read from the body as well as it can be read;
	// empty if it could not.
	Text, ReplyTo string
}

// fault counts the request and picks the fault for it: first the FailNext
// queue, then the FailIf rule, then Fail.
func (s *Server) fault(req Request) *Fault {
	return s.TakeFault(func(n int) Request { req.N = n; return req })
}
