package graphapi

import (
	"fmt"
	"net/http"
	"time"
)

// Graph error codes the stand-in answers with, on its own or on command.
const (
	CodeUnknown       = 1    // an unknown error; retry
	CodeService       = 2    // the service is down for a while; retry
	CodeAppRateLimit  = 4    // the app made too many calls
	CodeUserRateLimit = 17   // the user (the page's token) made too many calls
	CodePageRateLimit = 32   // the page made too many calls
	CodeParameter     = 100  // a parameter is missing or wrong, or the object is unknown
	CodeTokenMissing  = 104  // no access token
	CodeToken         = 190  // the access token is invalid or has expired
	CodePermission    = 200  // the token lacks pages_manage_posts
	CodeFeedRateLimit = 341  // too many posts to the feed
	CodeAbusive       = 368  // the page is blocked from posting for a while
	CodeDuplicate     = 506  // the same message posted twice in a row
	CodeCallRateLimit = 613  // a call made too often
	CodeUnknownPath   = 2500 // no such edge or path
)

// subcodeNoSuchObject is the error_subcode of code 100 for an object that
// does not exist or that the token may not see.
const subcodeNoSuchObject = 33

// Fault is how the stand-in fails a request instead of handling it, so
// that a test can see what its client makes of each way Graph fails.
// Faults apply to requests that carry the right token.
type Fault struct {
	// Status is the HTTP status to answer with, 400 to 599.
	Status int
	// Code is the Graph error code; 0 picks the one Graph uses for
	// Status (1 for 500, 2 for 503, 100 otherwise).
	Code int
	// Subcode is the error_subcode; 0 sends none.
	Subcode int
	// Message is the error's message; empty picks Graph's text for Code.
	Message string
	// Transient sets is_transient, which Graph sets on errors that a
	// retry may get past; the rate-limit and service codes set it
	// whatever this says.
	Transient bool
	// RegainAccess, when positive, is sent with a rate limit as the
	// estimated_time_to_regain_access of an X-Business-Use-Case-Usage
	// header, in whole minutes, rounded up: the only hint Graph gives of
	// when to try again.
	RegainAccess time.Duration
	// HTML, when set, is sent as the body with Content-Type text/html
	// instead of Graph's JSON, as a proxy in front of Graph answers.
	HTML string
	// Stall holds the request until the client gives up, Release is
	// called or the stand-in closes; the other fields are then ignored.
	Stall bool
}

// ServerError fails a request with status, such as 500 or 503, and
// Graph's error for it: code 1 for 500, code 2 for 503.
func ServerError(status int) Fault { return Fault{Status: status} }

// RateLimited fails a request with 400 and the rate-limit code (4, 17, 32,
// 341 or 613), with Graph's usage headers saying the limit is used up and,
// if regain is positive, how long until it is not.
func RateLimited(code int, regain time.Duration) Fault {
	return Fault{Status: http.StatusBadRequest, Code: code, RegainAccess: regain}
}

// InvalidToken fails a request with 400 and code 190, as Graph answers a
// token that has expired or been revoked.
func InvalidToken() Fault { return Fault{Status: http.StatusBadRequest, Code: CodeToken} }

// Refused fails a request with 400 and code, as Graph refuses a request it
// will never carry out: 200 for a token without the permission, 368 for a
// page blocked from posting, 506 for a duplicate.
func Refused(code int) Fault { return Fault{Status: http.StatusBadRequest, Code: code} }

// Stall holds a request until the client gives up, Release is called or
// the stand-in closes, as a Graph that has stopped answering would.
func Stall() Fault { return Fault{Stall: true} }

// Request is what a FailIf rule sees of a request to post or comment.
type Request struct {
	// N counts the requests that carried the right token, from 1, this
	// one included.
	N int
	// Edge is "feed" for a post, "comments" for a comment.
	Edge string
	// Object is the ID the request names: the page's for a post, the
	// post's for a comment.
	Object  string
	Message string
	Link    string
}

// defaultCode is the Graph error code that goes with an HTTP status when
// the test did not choose one.
func defaultCode(status int) int {
	switch {
	case status == http.StatusServiceUnavailable:
		return CodeService
	case status >= 500:
		return CodeUnknown
	}
	return CodeParameter
}

// rateLimit reports whether code is one of Graph's rate limits.
func rateLimit(code int) bool {
	switch code {
	case CodeAppRateLimit, CodeUserRateLimit, CodePageRateLimit, CodeFeedRateLimit, CodeCallRateLimit:
		return true
	}
	return false
}

// transient reports whether Graph marks code is_transient.
func transient(code int) bool {
	return code == CodeService || code == CodeAppRateLimit || code == CodeUserRateLimit
}

// message is Graph's text for an error code.
func message(code int) string {
	switch code {
	case CodeUnknown:
		return "An unknown error has occurred."
	case CodeService:
		return "An unexpected error has occurred. Please retry your request later."
	case CodeAppRateLimit:
		return "(#4) Application request limit reached"
	case CodeUserRateLimit:
		return "(#17) User request limit reached"
	case CodePageRateLimit:
		return "(#32) Page request limit reached"
	case CodeTokenMissing:
		return "An access token is required to request this resource."
	case CodeToken:
		return "Invalid OAuth access token - Cannot parse access token"
	case CodePermission:
		return "(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts permission with page token"
	case CodeFeedRateLimit:
		return "(#341) Feed action request limit reached"
	case CodeAbusive:
		return "The action attempted has been deemed abusive or is otherwise disallowed"
	case CodeDuplicate:
		return "(#506) Duplicate status message"
	case CodeCallRateLimit:
		return "(#613) Calls to this api have exceeded the rate limit."
	default:
		return fmt.Sprintf("(#%d) Error %d", code, code)
	}
}

// fault counts the request and picks the fault for it: first the FailNext
// queue, then the FailIf rule, then Fail.
func (s *Server) fault(req Request) *Fault {
	return s.TakeFault(func(n int) Request { req.N = n; return req })
}
