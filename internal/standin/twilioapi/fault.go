package twilioapi

import (
	"fmt"
	"net/url"
	"time"
)

// Fault is how the stand-in fails a request instead of handling it, so
// that a test can see what its client makes of each way Twilio fails.
type Fault struct {
	// Status is the HTTP status to answer with, 400 to 599.
	Status int
	// Code is the Twilio error code in the JSON body; 0 picks the one
	// Twilio uses for Status (20429 for 429, 20500 for 500 and so on).
	Code int
	// Message is the error's message; empty picks Twilio's text for Code,
	// with the request's numbers in it where Twilio puts them.
	Message string
	// RetryAfter, when positive, is sent as a Retry-After header in whole
	// seconds, rounded up.
	RetryAfter time.Duration
	// HTML, when set, is sent as the body with Content-Type text/html
	// instead of Twilio's JSON, as a proxy in front of Twilio answers.
	HTML string
	// Stall holds the request until the client gives up, Release is
	// called or the stand-in closes; the other fields are then ignored.
	Stall bool
}

// ServerError fails a request with status, such as 500 or 503, and
// Twilio's JSON error for it.
func ServerError(status int) Fault { return Fault{Status: status} }

// RateLimited fails a request with 429 Too Many Requests (Twilio's error
// 20429), asking the client to wait retryAfter if it is positive.
func RateLimited(retryAfter time.Duration) Fault {
	return Fault{Status: 429, RetryAfter: retryAfter}
}

// Refused fails a request with 400 and Twilio error code, as Twilio
// refuses a message it will never send: 21610 for a recipient who has
// replied STOP, 21408 for a region not enabled, 21211 for a bad number.
func Refused(code int) Fault { return Fault{Status: 400, Code: code} }

// Stall holds a request until the client gives up, Release is called or
// the stand-in closes, as a Twilio that has stopped answering would.
func Stall() Fault { return Fault{Stall: true} }

// Request is what a FailIf rule sees of a request to send a message.
type Request struct {
	// N counts the requests to send a message that passed authentication,
	// from 1, this one included.
	N                   int
	To, From            string
	MessagingServiceSID string
	Body                string
	StatusCallback      string
}

// fault counts the request and picks the fault for it: first the FailNext
// queue, then the FailIf rule, then Fail.
func (s *Server) fault(form url.Values) *Fault {
	return s.TakeFault(func(n int) Request {
		return Request{
			N:                   n,
			To:                  form.Get("To"),
			From:                form.Get("From"),
			MessagingServiceSID: form.Get("MessagingServiceSid"),
			Body:                form.Get("Body"),
			StatusCallback:      form.Get("StatusCallback"),
		}
	})
}

// defaultCode is the Twilio error code that goes with an HTTP status when
// the test did not choose one.
func defaultCode(status int) int {
	switch status {
	case 401:
		return 20003
	case 404:
		return 20404
	case 405:
		return 20004
	default:
		return 20000 + status
	}
}

// message is Twilio's text for an error code, with the request's values
// where Twilio puts them.
func message(code int, form url.Values, path string) string {
	switch code {
	case 20003:
		return "Authenticate"
	case 20004:
		return "Method not allowed"
	case 20404:
		return fmt.Sprintf("The requested resource %s was not found", path)
	case 20429:
		return "Too Many Requests"
	case 20500:
		return "An internal server error has occurred"
	case 20503:
		return "Service is unavailable. Please try again"
	case 21211:
		return fmt.Sprintf("The 'To' number %s is not a valid phone number.", form.Get("To"))
	case 21212:
		return fmt.Sprintf("The 'From' number %s is not a valid phone number, shortcode, or alphanumeric sender ID.", form.Get("From"))
	case 21408:
		return fmt.Sprintf("Permission to send an SMS has not been enabled for the region indicated by the 'To' number: %s.", form.Get("To"))
	case 21602:
		return "Message body is required."
	case 21603:
		return "A 'From' phone number is required."
	case 21604:
		return "A 'To' phone number is required."
	case 21606:
		return "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account."
	case 21609:
		return fmt.Sprintf("The StatusCallback URL %s is not a valid URL.", form.Get("StatusCallback"))
	case 21610:
		return "Attempt to send to unsubscribed recipient"
	case 21614:
		return fmt.Sprintf("'To' number %s is not a valid mobile number", form.Get("To"))
	case 21617:
		return "The concatenated message body exceeds the 1600 character limit."
	case 21701:
		return fmt.Sprintf("The Messaging Service Sid %s is invalid.", form.Get("MessagingServiceSid"))
	default:
		return fmt.Sprintf("Error %d", code)
	}
}
