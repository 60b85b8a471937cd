// Package twiliorest is the plumbing the notifier's Twilio adapters share
// under twilio-go: a transport that bounds each request by the caller's
// context (twilio-go itself takes no context), sends it to the configured
// API URL and notes what twilio-go does not pass on of the answer; a
// client built so that nothing in the environment redirects it; and the
// one rule that turns a failed request into a *bus.ProviderError the bus
// can retry or give up on. What each adapter asks Twilio, and what it must
// keep out of error texts, stays in the adapter.
package twiliorest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// Answer is what the transport saw of Twilio's last answer, which
// twilio-go does not pass on: its status even when the body is not
// Twilio's JSON, and its Retry-After. Both are zero when no answer came.
type Answer struct {
	Status     int
	RetryAfter time.Duration
}

// Transport carries the requests of one adapter call (one SMS, one phone
// call). It bounds them by that call's context, sends them to the
// configured API URL when there is one, and notes the answer's status and
// Retry-After. It is for one call's requests, made one after another, and
// is not safe for concurrent use.
type Transport struct {
	ctx  context.Context
	base http.RoundTripper
	api  *url.URL // nil: leave the URL as twilio-go built it
	now  func() time.Time
	ans  Answer
}

// NewTransport returns a Transport that bounds its requests by ctx and
// makes them through base, which keeps the connection pool and so should
// be shared by every call. apiURL, when not nil, replaces the scheme and
// host twilio-go chose and goes before its path; now reads a Retry-After
// given as a date.
func NewTransport(ctx context.Context, base http.RoundTripper, apiURL *url.URL, now func() time.Time) *Transport {
	return &Transport{ctx: ctx, base: base, api: apiURL, now: now}
}

// Answer is what the transport saw of the last answer.
func (t *Transport) Answer() Answer { return t.ans }

// RoundTrip sends req, bounded by both its own context and the call's.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	// req's context holds http.Client's deadline; ending it also when
	// the call's context ends makes either bound the request. The call's
	// context ends when the call returns, which releases rctx.
	rctx, cancel := context.WithCancelCause(req.Context())
	context.AfterFunc(t.ctx, func() { cancel(context.Cause(t.ctx)) })
	out := req.Clone(rctx) // a RoundTripper must not change req
	if t.api != nil {
		out.URL.Scheme = t.api.Scheme
		out.URL.Host = t.api.Host
		out.URL.Path = strings.TrimSuffix(t.api.Path, "/") + req.URL.Path
		out.URL.RawPath = ""
		out.Host = ""
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	t.ans.Status = resp.StatusCode
	t.ans.RetryAfter = apicall.RetryAfter(resp.Header.Get("Retry-After"), t.now())
	// twilio-go stops reading an answer at the end of its JSON, and never
	// closes the body of an error answer. Unless the body's end happened
	// to arrive with the JSON, the connection would be stuck or thrown
	// away, and the next request would pay for a new one and its TLS
	// handshake. Reading the answer here to its end, bounded (Twilio's
	// are a few kilobytes), returns the connection to the pool; twilio-go
	// decodes the copy.
	b, err := io.ReadAll(io.LimitReader(resp.Body, apicall.MaxAnswer))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read twilio's %d answer: %w", resp.StatusCode, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// NewService builds a twilio-go API client for one call's requests,
// made through t with accountSID's credentials. twilio-go makes its
// requests with context.Background(), so the only way to bound one by the
// call's context is a transport that carries it; the client is cheap, and
// building one per call keeps concurrent calls apart. timeout should be
// the one the call's context already has: the client's own is a
// backstop a second later, so that the context ends first and says why.
func NewService(t *Transport, accountSID, authToken string, timeout time.Duration) *api.ApiService {
	hc := apicall.Bound(&http.Client{Transport: t}, timeout)
	c := &client.Client{
		Credentials:         client.NewCredentials(accountSID, authToken),
		HTTPClient:          hc,
		UserAgentExtensions: []string{"tocsin"},
	}
	c.SetAccountSid(accountSID)
	// Not client.NewRequestHandler: it reads TWILIO_EDGE and TWILIO_REGION
	// from the environment and would send to another host than the one
	// configured.
	return api.NewApiService(&client.RequestHandler{Client: c})
}

// Begin starts one adapter call (one SMS, one phone call) under ctx. It
// returns ctx bounded by the account's timeout, with a cause that says so
// when it ends; the twilio-go service for the call's requests, which that
// context bounds; and the transport, which notes Twilio's answer for
// Failure. cancel must be called when the call is over.
func (c Checked) Begin(ctx context.Context) (_ context.Context, cancel context.CancelFunc, _ *api.ApiService, _ *Transport) {
	ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout,
		fmt.Errorf("twilio did not answer within %v: %w", c.Timeout, context.DeadlineExceeded))
	// twilio-go makes its requests with context.Background(); the
	// transport is what bounds them by ctx.
	tr := NewTransport(ctx, c.Base, c.API, c.Now)
	return ctx, cancel, NewService(tr, c.sid, c.authToken, c.Timeout), tr
}

// Scrub takes the auth token and the number to out of text, in case
// Twilio or a library ever echoes them: the number, with or without its
// "+", becomes short(to).
func Scrub(text, authToken, to string, short func(string) string) string {
	if authToken != "" {
		text = strings.ReplaceAll(text, authToken, "[auth token]")
	}
	if len(to) >= 7 {
		text = strings.ReplaceAll(text, to, short(to))
		if bare := strings.TrimPrefix(to, "+"); len(bare) >= 7 {
			text = strings.ReplaceAll(text, bare, short(to))
		}
	}
	return text
}

// Failure describes and classifies err, the failure of a request whose
// answer (if any) was ans, made under ctx to do what: "send sms to
// +44…001". The text reads "twilio: " + what + ": " and why, and scrub
// takes out of it, and out of Twilio's own message, whatever must not be
// logged (the auth token, the number in full); what should already be
// fit to log.
//
// The error's Err is err, with a *client.TwilioRestError replaced by a
// scrubbed copy (its Details, which may hold anything, dropped) and any
// other error joined with why ctx ended, when it did. Retry is false only
// for a 4xx answer other than 408 and 429, which asking again will get
// again; no answer, a 408, a 429, a 5xx, and a 2xx or 3xx that did not
// hold what was asked for are all worth a retry, after ans.RetryAfter
// when Twilio gave one.
func Failure(ctx context.Context, err error, ans Answer, what string, scrub func(string) string) *bus.ProviderError {
	e := &bus.ProviderError{Status: ans.Status, RetryAfter: ans.RetryAfter}
	var desc string
	var rest *client.TwilioRestError
	if errors.As(err, &rest) {
		if e.Status == 0 {
			e.Status = rest.Status
		}
		// The message may quote the number or a URL, and Details
		// anything; what stays reachable through Unwrap is scrubbed like
		// the text.
		clean := &client.TwilioRestError{
			Code:     rest.Code,
			Message:  scrub(rest.Message),
			MoreInfo: rest.MoreInfo,
			Status:   rest.Status,
		}
		err = clean
		desc = fmt.Sprintf("twilio answered %d, error %d: %s (%s)", e.Status, clean.Code, clean.Message, clean.MoreInfo)
	} else {
		if cause := context.Cause(ctx); cause != nil {
			// What twilio-go saw was the request we cancelled; say why.
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		desc = err.Error()
		if e.Status != 0 {
			desc = fmt.Sprintf("twilio answered %d: %s", e.Status, desc)
		}
	}

	e.Retry = apicall.Retry(e.Status)
	if e.RetryAfter > 0 {
		desc += fmt.Sprintf("; retry after %v", e.RetryAfter)
	}
	e.Text = scrub("twilio: " + what + ": " + desc)
	e.Err = err
	return e
}
