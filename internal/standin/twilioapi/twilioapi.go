// Package twilioapi runs a stand-in for Twilio's Messages API on loopback,
// so that code which sends SMS through twilio-go can be tested against the
// API as it answers on the wire: the same path and basic authentication,
// the same checks of the form fields with the same error codes, the same
// JSON for a created message and for an error, Twilio-signed status
// callbacks and inbound messages, and failures on command (5xx, 429 with
// Retry-After, a 400 with a chosen error code, or a request held until the
// client gives up).
//
// twilio-go's base URL is a constant, so a test reaches the stand-in either
// through Server.Transport, which rewrites requests for api.twilio.com, or
// by giving its own code the stand-in's URL to rewrite to.
package twilioapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// Message is one message the stand-in accepted, as the client sent it.
type Message struct {
	SID                 string // "SM" and 32 hex digits, as in the answer
	To                  string
	From                string // empty when only MessagingServiceSID was sent
	MessagingServiceSID string
	Body                string
	StatusCallback      string
	NumSegments         int // by Twilio's count: GSM-7 or UCS-2 parts
	Received            time.Time
	// Raw is the request body as it arrived, for tests that check the
	// encoding byte for byte.
	Raw string
	// Header holds the request's headers, Authorization included.
	Header http.Header
}

// Attempt is one request that reached the stand-in, accepted or not, so
// that a test can count retries and see what was refused.
type Attempt struct {
	Time time.Time
	// Form is what the request's body held; empty when the request was
	// not form-encoded or was refused before its body was read.
	Form url.Values
	// Status is what the stand-in answered; 0 when the client gave up on
	// a stalled request first.
	Status int
	// Code is the Twilio error code of an error answer, 0 otherwise.
	Code int
}

// Server is the stand-in. It listens on 127.0.0.1 until Close and keeps
// every message it accepts, in arrival order, for as long as it lives. Its
// methods are safe for concurrent use.
type Server struct {
	*standin.Server // URL, Connections, Stalled, Release
	// FailNext, Fail, FailIf and Recover set how requests to send a
	// message fail.
	standin.Faults[Fault, Request]

	// AccountSID and AuthToken are the one account the stand-in knows.
	AccountSID, AuthToken string

	webhooks *http.Client // for status callbacks and inbound messages

	msgs     standin.Kept[Message]
	attempts standin.Kept[Attempt]
	calls    standin.Kept[Call] // the Calls API's, in calls.go
}

// New starts a stand-in that accepts requests authenticated as accountSID
// with authToken. Both must be letters and digits, as twilio-go insists.
// The caller must Close it.
func New(accountSID, authToken string) (*Server, error) {
	if !alnum(accountSID) || !alnum(authToken) {
		return nil, errors.New("twilioapi: account SID and auth token must be non-empty letters and digits, as twilio-go requires")
	}
	s := &Server{
		AccountSID: accountSID,
		AuthToken:  authToken,
	}
	s.msgs.Deep = func(m Message) Message { m.Header = m.Header.Clone(); return m }
	s.attempts.Deep = func(a Attempt) Attempt { a.Form = cloneValues(a.Form); return a }
	s.calls.Deep = func(c Call) Call { c.Header = c.Header.Clone(); return c }
	s.Server = standin.Start("twilioapi", http.HandlerFunc(s.serve))
	s.webhooks = &http.Client{
		Transport:     loopbackOnly{base: &http.Transport{}},
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Start is New for a test: it fails the test if the stand-in cannot start
// and closes it when the test ends.
func Start(t standin.TB, accountSID, authToken string) *Server {
	t.Helper()
	s, err := New(accountSID, authToken)
	return standin.ForTest(t, s, err)
}

// Close answers stalled requests with 503, stops the server and waits for
// requests in progress to finish. Messages already accepted stay readable.
// Calling Close again does nothing.
func (s *Server) Close() {
	s.Server.Close()
	s.webhooks.CloseIdleConnections()
}

// Messages returns a copy of every message accepted so far, in the order
// they were accepted.
func (s *Server) Messages() []Message {
	return s.msgs.All()
}

// Attempts returns a copy of every request received so far that has been
// answered, in the order they were answered.
func (s *Server) Attempts() []Attempt {
	return s.attempts.All()
}

// WaitFor returns the messages as soon as at least n have been accepted. If
// ctx ends or the stand-in closes first, it returns what did arrive and an
// error that lists it, so that a failing test says what it got.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Message, error) {
	return standin.WaitForN(ctx, s.Server, n, "message", s.Messages, func(m Message) string {
		return fmt.Sprintf("%s to %q body %q", m.SID, m.To, m.Body)
	})
}

func (s *Server) store(m Message) {
	s.msgs.Add(m)
	s.Arrived()
}

func (s *Server) record(a Attempt) { s.attempts.Add(a) }

// NewSID returns a new random SID of the kind prefix names, in Twilio's
// form: "AC" for an account, "MG" for a messaging service, "SM" for a
// message, followed by 32 lower-case hex digits.
func NewSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, per crypto/rand
	return prefix + hex.EncodeToString(b[:])
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func alnum(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}
