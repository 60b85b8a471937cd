// Package twiliovoice is the notifier's voice channel: it places one phone
// call to one number through Twilio's Calls API with twilio-go, the call
// reading an alarm out twice and asking the person to press 1 to
// acknowledge it. Like twiliosms it bounds every request by a timeout and
// by the caller's context (twilio-go itself takes no context) and tells
// the bus which failures are worth retrying and how soon.
//
// Twilio's Calls API takes no idempotency key: a request sent twice rings
// the phone twice. What keeps a page from calling twice is the notifier's
// delivery record, written once a call is accepted and read before the
// next attempt, exactly as for SMS. A call whose answer was lost (a
// timeout after Twilio took it) is retried and may ring again: a second
// call beats a missed alarm.
package twiliovoice

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/redact"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
)

const (
	// DefaultTimeout bounds one Call when Config.Timeout is zero.
	DefaultTimeout = twiliorest.DefaultTimeout
	// DefaultRing is how long the phone rings when Config.Ring is zero:
	// long enough to wake someone, short enough to hang up before most
	// voicemail answers.
	DefaultRing = 25 * time.Second
	// MaxRing is the longest ring Twilio allows.
	MaxRing = 600 * time.Second
	// DefaultAPIURL is Twilio's API, where requests go when
	// Config.APIURL is empty.
	DefaultAPIURL = "https://api.twilio.com"
)

var e164RE = twiliorest.E164RE

// Config is the Twilio account to call from and how.
type Config struct {
	// Account is whose account, where requests go (APIURL: a stand-in in
	// tests, or a proxy), where Twilio reports the call's progress, and
	// how long one Call may take, from the first byte sent to the answer
	// read.
	twiliorest.Account
	// From is the caller ID: one of the account's numbers in
	// international form. Unlike an SMS, a call cannot come from a name
	// or a messaging service.
	From string
	// Ring is how long the phone rings before Twilio gives up, in whole
	// seconds, 5 to 600; 0 is DefaultRing.
	Ring time.Duration
}

// Caller places calls as configured. It keeps a pool of connections to
// Twilio but no state about calls, so it is safe for concurrent use.
type Caller struct {
	cfg  Config
	acct twiliorest.Checked
}

// New checks cfg, reporting every problem at once, and fills in defaults.
// Error texts never hold the auth token.
func New(cfg Config) (*Caller, error) {
	c, problems := cfg.Account.Check()
	if !e164RE.MatchString(cfg.From) {
		problems = append(problems, fmt.Errorf("from %q: a call needs a number in international form like +447700900000 as its caller ID", cfg.From))
	}
	switch {
	case cfg.Ring == 0:
		cfg.Ring = DefaultRing
	case cfg.Ring < 5*time.Second || cfg.Ring > MaxRing || cfg.Ring%time.Second != 0:
		problems = append(problems, fmt.Errorf("ring %v: want whole seconds from 5s to %v", cfg.Ring, MaxRing))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("twilio voice config: %w", errors.Join(problems...))
	}
	cfg.Timeout = c.Timeout
	return &Caller{cfg: cfg, acct: c}, nil
}

// Call asks Twilio to call the number to, in international form, read
// text out twice and ask for 1 to be pressed, which Twilio posts to
// gatherURL (with no gatherURL, the call only reads text out: it still
// wakes someone, who acknowledges another way); it returns the new call's SID once Twilio has accepted it
// (queued, not yet ringing). A text too long for Twilio's limit on TwiML
// is shortened, not refused: an alarm cut short still wakes someone.
//
// Call returns when Twilio answers, when Config.Timeout has passed, or
// when ctx ends, whichever is first. A failure is a *bus.ProviderError,
// Twilio's own error (*client.TwilioRestError, with its code) among its
// causes. One that calling again cannot fix (a bad number, a 4xx answer
// other than 408 and 429, wrong credentials) has Retry false and counts
// as bus.IsPermanent; any other, ctx ending included, is worth a retry,
// after Twilio's Retry-After when it gave one. Error texts hold neither
// the auth token, nor the number in full, nor the gather URL, whose path
// is signed.
func (c *Caller) Call(ctx context.Context, to, text, gatherURL string) (string, error) {
	switch {
	case !e164RE.MatchString(to):
		return "", c.refuse(to, gatherURL, "the number is not in international form, like +447700900000")
	case strings.TrimSpace(text) == "":
		return "", c.refuse(to, gatherURL, "the message is empty")
	case gatherURL != "" && !twiliorest.WebURL(gatherURL):
		return "", c.refuse(to, gatherURL, "the gather URL is not an absolute http or https URL")
	}

	ctx, cancel, svc, tr := c.acct.Begin(ctx)
	defer cancel()
	p := params(c.cfg.From, to, TwiML(text, gatherURL), c.cfg.StatusCallback, int(c.cfg.Ring/time.Second))
	call, err := svc.CreateCall(p)
	if err != nil {
		return "", c.failure(ctx, err, tr.Answer(), to, gatherURL)
	}
	if call.Sid == nil || *call.Sid == "" {
		return "", c.failure(ctx, fmt.Errorf("answer %d holds no call SID", tr.Answer().Status), tr.Answer(), to, gatherURL)
	}
	return *call.Sid, nil
}

// params builds the request to call to from from with twiml, ringing for
// ring seconds, with a StatusCallback when callback is set. twilio-go
// encodes it; the tests hold the bytes that go on the wire.
func params(from, to, twiml, callback string, ring int) *api.CreateCallParams {
	p := (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml(twiml).SetTimeout(ring)
	if callback != "" {
		p.SetStatusCallback(callback)
	}
	return p
}

// refuse is the error for a call Call will not try to place.
func (c *Caller) refuse(to, gatherURL, why string) error {
	return &bus.ProviderError{Text: c.scrub("twilio: call "+redact.Phone(to)+": "+why, to, gatherURL)}
}

// failure describes and classifies a call that went wrong.
func (c *Caller) failure(ctx context.Context, err error, ans twiliorest.Answer, to, gatherURL string) error {
	return twiliorest.Failure(ctx, err, ans, "call "+redact.Phone(to), func(text string) string { return c.scrub(text, to, gatherURL) })
}

// scrub takes the auth token, the number and the gather URL out of text,
// in case Twilio or a library ever echoes them.
func (c *Caller) scrub(text, to, gatherURL string) string {
	if gatherURL != "" {
		text = strings.ReplaceAll(text, gatherURL, "[gather URL]")
		text = strings.ReplaceAll(text, url.QueryEscape(gatherURL), "[gather URL]")
	}
	return twiliorest.Scrub(text, c.cfg.AuthToken, to, redact.Phone)
}
