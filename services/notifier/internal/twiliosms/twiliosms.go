// Package twiliosms is the notifier's SMS channel: it sends one text
// message to one number through Twilio's Messages API with twilio-go,
// bounds every send by a timeout and by the caller's context (twilio-go
// itself takes no context), tells the bus which failures are worth
// retrying and how soon, and fits alarm texts into one SMS segment.
package twiliosms

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf16"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
)

const (
	// DefaultTimeout bounds one Send when Config.Timeout is zero.
	DefaultTimeout = twiliorest.DefaultTimeout
	// DefaultAPIURL is Twilio's API, where requests go when
	// Config.APIURL is empty.
	DefaultAPIURL = "https://api.twilio.com"
)

var (
	e164RE       = twiliorest.E164RE
	serviceSIDRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	shortCodeRE  = regexp.MustCompile(`^[0-9]{5,6}$`)
	alphaIDRE    = regexp.MustCompile(`^[A-Za-z0-9 ]{1,11}$`)
	letterRE     = regexp.MustCompile(`[A-Za-z]`)
)

// Config is the Twilio account to send from and how.
type Config struct {
	// Account is whose account, where requests go (APIURL: a stand-in in
	// tests, or a proxy), where Twilio reports each message's delivery
	// status, and how long one Send may take, from the first byte sent to
	// the answer read.
	twiliorest.Account
	// From is the sender: a number in international form, a short code,
	// an alphanumeric sender ID, or a Messaging Service SID ("MG…"),
	// which is sent as MessagingServiceSid so that Twilio picks the number
	// from the service's pool.
	From string
}

// Sender sends SMS as configured. It keeps a pool of connections to Twilio
// but no state about messages, so it is safe for concurrent use.
type Sender struct {
	cfg  Config
	acct twiliorest.Checked
}

// New checks cfg, reporting every problem at once, and fills in defaults.
// Error texts never hold the auth token.
func New(cfg Config) (*Sender, error) {
	c, problems := cfg.Account.Check()
	if !validFrom(cfg.From) {
		problems = append(problems, fmt.Errorf("from %q: want a number in international form like +447700900000, a short code, an alphanumeric sender ID of up to 11 characters, or a Messaging Service SID", cfg.From))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("twilio config: %w", errors.Join(problems...))
	}
	cfg.Timeout = c.Timeout
	return &Sender{cfg: cfg, acct: c}, nil
}

func validFrom(from string) bool {
	return e164RE.MatchString(from) || serviceSIDRE.MatchString(from) || shortCodeRE.MatchString(from) ||
		alphaIDRE.MatchString(from) && letterRE.MatchString(from)
}

// Send asks Twilio to send body to the number to, in international form,
// and returns the new message's SID once Twilio has accepted it (queued,
// not yet delivered). body goes as it is: callers that want one segment
// pass it through Fit first.
//
// Send returns when Twilio answers, when Config.Timeout has passed, or
// when ctx ends, whichever is first. A failure is a *bus.ProviderError,
// Twilio's own error (*client.TwilioRestError, with its code) among its
// causes. One that sending again cannot fix (a bad number or body, a 4xx
// answer other than 429, wrong credentials) has Retry false, and counts as
// bus.IsPermanent; any other, ctx ending included, is worth a retry, after
// Twilio's Retry-After when it gave one. Error texts hold neither the auth
// token nor the recipient's number in full.
func (s *Sender) Send(ctx context.Context, to, body string) (string, error) {
	n := 0
	for _, r := range body {
		n += utf16.RuneLen(r)
	}
	switch {
	case !e164RE.MatchString(to):
		return "", s.refuse(to, "the number is not in international form, like +447700900000")
	case body == "":
		return "", s.refuse(to, "the message is empty")
	case n > MaxBody:
		return "", s.refuse(to, fmt.Sprintf("the message has %d characters; Twilio takes at most %d", n, MaxBody))
	}

	ctx, cancel, svc, tr := s.acct.Begin(ctx)
	defer cancel()
	msg, err := svc.CreateMessage(params(s.cfg.From, to, body, s.cfg.StatusCallback))
	if err != nil {
		return "", s.failure(ctx, err, tr.Answer(), to)
	}
	if msg.Sid == nil || *msg.Sid == "" {
		return "", s.failure(ctx, fmt.Errorf("answer %d holds no message SID", tr.Answer().Status), tr.Answer(), to)
	}
	return *msg.Sid, nil
}

// params builds the request to send body to to from from: the sender as
// From, or as MessagingServiceSid when it is a Messaging Service SID, and
// a StatusCallback when callback is set. twilio-go encodes it; the tests
// hold the bytes that go on the wire.
func params(from, to, body, callback string) *api.CreateMessageParams {
	p := (&api.CreateMessageParams{}).SetTo(to).SetBody(body)
	if serviceSIDRE.MatchString(from) {
		p.SetMessagingServiceSid(from)
	} else {
		p.SetFrom(from)
	}
	if callback != "" {
		p.SetStatusCallback(callback)
	}
	return p
}

// refuse is the error for a message Send will not try to send.
func (s *Sender) refuse(to, why string) error {
	return &bus.ProviderError{Text: s.scrub("twilio: send sms to "+mask(to)+": "+why, to)}
}

// failure describes and classifies a send that went wrong.
func (s *Sender) failure(ctx context.Context, err error, ans twiliorest.Answer, to string) error {
	return twiliorest.Failure(ctx, err, ans, "send sms to "+mask(to), func(text string) string { return s.scrub(text, to) })
}

// scrub takes the auth token and the recipient's number out of text, in
// case Twilio or a library ever echoes them.
func (s *Sender) scrub(text, to string) string {
	return twiliorest.Scrub(text, s.cfg.AuthToken, to, mask)
}

// mask keeps the start of a number, which tells the country, and its last
// three digits, which tell two people apart: "+44…001".
func mask(n string) string {
	if len(n) < 8 || !ascii(n) {
		return "…"
	}
	return n[:3] + "…" + n[len(n)-3:]
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
