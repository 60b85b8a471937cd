// Package twiliotest is what the tests of the Twilio adapters (twiliosms,
// twiliovoice) share: the ways Twilio fails whatever it is asked, and the
// one check of what an adapter makes of each failure.
package twiliotest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

// Failure is a way Twilio fails, and what the adapter must make of it.
type Failure struct {
	Name       string
	Fault      twilioapi.Fault
	Status     int
	Code       int // Twilio's error code behind the error; 0: none
	Retry      bool
	RetryAfter time.Duration
	Text       string // a part of the error's text
}

// Common is how Twilio fails whatever the request: its own errors, its
// rate limit, a proxy in front of it, and a refusal of the account.
func Common() []Failure {
	return []Failure{
		{Name: "500", Fault: twilioapi.ServerError(500), Status: 500, Code: 20500, Retry: true,
			Text: "twilio answered 500, error 20500: An internal server error has occurred"},
		{Name: "503", Fault: twilioapi.ServerError(503), Status: 503, Code: 20503, Retry: true},
		{Name: "429 with Retry-After", Fault: twilioapi.RateLimited(3 * time.Second), Status: 429, Code: 20429,
			Retry: true, RetryAfter: 3 * time.Second, Text: "retry after 3s"},
		{Name: "429 without Retry-After", Fault: twilioapi.RateLimited(0), Status: 429, Code: 20429, Retry: true},
		{Name: "502 from a proxy", Fault: twilioapi.Fault{Status: 502, HTML: "<html>Bad Gateway</html>"},
			Status: 502, Retry: true, Text: "twilio answered 502"},
		{Name: "403", Fault: twilioapi.Fault{Status: 403, Code: 20403}, Status: 403, Code: 20403},
	}
}

// Adapter is the adapter under test, as Failures drives it.
type Adapter struct {
	Account, Token string   // the stand-in's account
	Prefix         string   // how every error of the request starts
	Secrets        []string // what no error, nor any of its causes, may show
	// Send makes the adapter's one request to s.
	Send func(t *testing.T, s *twilioapi.Server) error
}

// Failures has a fresh stand-in fail each request as one of failures says,
// and checks how the adapter classified it: status, retry, Twilio's code,
// the text, and no secret shown.
func Failures(t *testing.T, a Adapter, failures []Failure) {
	t.Helper()
	for _, tt := range failures {
		t.Run(tt.Name, func(t *testing.T) {
			s := twilioapi.Start(t, a.Account, a.Token)
			s.FailNext(1, tt.Fault)
			err := a.Send(t, s)
			providertest.Classified(t, err, providertest.Failed{Status: tt.Status, Retry: tt.Retry, RetryAfter: tt.RetryAfter,
				Prefix: a.Prefix, Text: tt.Text})
			if got := Code(err); got != tt.Code {
				t.Errorf("code %d, want %d", got, tt.Code)
			}
			providertest.NoSecretsInCauses(t, err, a.Secrets...)
		})
	}
}

// Rig is the rig providertest.Run drives a Twilio adapter with, on the
// stand-in s: how Twilio fails and recovers is the same for every adapter;
// send, what s accepted, the code Twilio refuses with for good and what
// must never show are the adapter's.
func Rig(s *twilioapi.Server, send func(ctx context.Context, key string) (string, error), accepted func() []string,
	refusal int, secrets []string) providertest.Rig {
	return providertest.Rig{
		Send:        send,
		Refuse:      func() { s.Fail(twilioapi.Refused(refusal)) },
		Unavailable: func() { s.Fail(twilioapi.ServerError(503)) },
		Recover:     s.Recover,
		RateLimit:   func(d time.Duration) time.Duration { s.Fail(twilioapi.RateLimited(d)); return d },
		Accepted:    accepted,
		Connections: s.Connections,
		Secrets:     secrets,
	}
}

// Code is Twilio's error code behind err, 0 when it gave none.
func Code(err error) int {
	var re *client.TwilioRestError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}
