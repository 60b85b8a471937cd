// Package apicall makes one call to a provider's HTTP API (X, Facebook's
// Graph API) as every adapter of Tocsin must: bounded by a timeout that
// says why it ended, no redirect followed, the answer read to its end
// within a bound so that the connection goes back to the pool, and every
// failure a *bus.ProviderError whose text is scrubbed of the credentials.
// What the provider's answer means stays in its adapter; the rule for
// which answers are worth a retry, and the reading of Retry-After, are
// here, for those adapters and for Twilio's.
package apicall

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// MaxAnswer bounds how much of an answer is read: the providers' are a
// few kilobytes at most.
const MaxAnswer = 1 << 20

// Transport returns a transport for one adapter's connection pool:
// http.DefaultTransport's settings, with TLS 1.2 at least.
func Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return t
}

// Bound sets on hc what every provider client keeps, and returns it: a
// timeout a second after the call's own, as a backstop, so that the
// call's context ends first and says why; and no redirect followed, since
// a redirect is an answer, not a reason to send credentials elsewhere.
func Bound(hc *http.Client, timeout time.Duration) *http.Client {
	hc.Timeout = timeout + time.Second
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

// Secret is a credential to keep out of error texts, and the name that
// stands for it there, such as "[token]".
type Secret struct{ Value, Name string }

// Scrub replaces each secret in text, as it is and URL-encoded, by its
// name, in case a provider or a library ever echoes it. An empty secret
// is passed over.
func Scrub(text string, secrets ...Secret) string {
	for _, s := range secrets {
		if s.Value == "" {
			continue
		}
		text = strings.ReplaceAll(text, s.Value, s.Name)
		if enc := url.QueryEscape(s.Value); enc != s.Value {
			text = strings.ReplaceAll(text, enc, s.Name)
		}
	}
	return text
}

// Timeout is the bound on one call that an adapter's config asks for: d,
// or def when d is 0. A negative d is a mistake in the config, said in the
// error.
func Timeout(d, def time.Duration) (time.Duration, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("timeout %v is negative", d)
	case d == 0:
		return def, nil
	}
	return d, nil
}

// CheckCredential says what is wrong with the credential called name, or
// returns nil: it must be set, and hold printable ASCII and no space, as
// every provider's token and key does; a stray newline or quote from a
// secret's file is the usual mistake. The text never holds the value.
func CheckCredential(name, value string) error {
	if value == "" {
		return fmt.Errorf("%s is empty", name)
	}
	for i := range len(value) {
		if value[i] <= ' ' || value[i] >= 0x7f {
			return fmt.Errorf("%s holds spaces or characters outside printable ASCII; check for a stray newline or quote", name)
		}
	}
	return nil
}

// Caller makes the calls of one adapter.
type Caller struct {
	// Provider names the channel at the start of error texts: "x",
	// "facebook".
	Provider string
	// Server names who answers, in "graph answered 500" and "graph did
	// not answer within 10s".
	Server string
	// Client makes the requests; Bound should have set it up.
	Client *http.Client
	// Timeout bounds one call, from the first byte sent to the answer
	// read.
	Timeout time.Duration
	// Scrub takes the credentials out of a text; nil leaves it as it is.
	Scrub func(string) string
	// SecretParams names the query parameters that carry a credential,
	// and what stands for their values in a URL an error quotes, as
	// "access_token" → "[token]": however the value is encoded there,
	// it goes.
	SecretParams map[string]string
}

// Answer is a provider's answer, read to its end.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Post sends body to endpoint, as contentType, to do what ("post",
// "comment on 42_7"), and returns the answer, whatever its status. It
// returns when the answer is read, when Timeout has passed, or when ctx
// ends, whichever is first. When no answer came, or it could not be read
// to its end, the error is a *bus.ProviderError worth a retry, whose text
// says why, the cancelled context's cause included: whether the provider
// acted is unknown, and a retry finds out.
func (c *Caller) Post(ctx context.Context, what, endpoint, contentType string, body []byte) (*Answer, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.Timeout,
		fmt.Errorf("%s did not answer within %v: %w", c.Server, c.Timeout, context.DeadlineExceeded))
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, c.Refuse(what, err.Error())
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "tocsin")
	resp, err := c.Client.Do(req)
	if err != nil {
		err = c.scrubURLError(err)
		if cause := context.Cause(ctx); cause != nil {
			// What the client saw was the request we cancelled; say why.
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		return nil, c.Fail(what, &bus.ProviderError{Retry: true}, err.Error(), err)
	}
	// Read to the end, so that the connection goes back to the pool.
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	_ = resp.Body.Close()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		return nil, c.Fail(what, &bus.ProviderError{Status: resp.StatusCode, Retry: true},
			fmt.Sprintf("%s answered %d; reading the answer: %v", c.Server, resp.StatusCode, err), err)
	}
	return &Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Refuse is the error for a call not made: not worth a retry, since the
// same call would be refused again.
func (c *Caller) Refuse(what, why string) error {
	return c.Fail(what, &bus.ProviderError{}, why, nil)
}

// Fail finishes e and returns it: its text, "<provider>: <what>: <desc>"
// scrubbed of the credentials, and its cause.
func (c *Caller) Fail(what string, e *bus.ProviderError, desc string, cause error) error {
	e.Text = c.scrub(c.Provider + ": " + what + ": " + desc)
	e.Err = cause
	return e
}

func (c *Caller) scrub(s string) string {
	if c.Scrub == nil {
		return s
	}
	return c.Scrub(s)
}

// scrubURLError takes the credentials out of the URL a *url.Error quotes:
// the credentials may travel in the body, but a proxy's redirect or a
// future change could put them in a URL, and the error reaches logs.
func (c *Caller) scrubURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	clean := *ue
	if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
		q := u.Query()
		for param, name := range c.SecretParams {
			if q.Has(param) {
				q.Set(param, name)
			}
		}
		u.RawQuery = q.Encode()
		clean.URL = u.String()
	}
	clean.URL = c.scrub(clean.URL)
	return &clean
}

// Retry is the rule for an answer that does not hold what was asked for:
// a 408, a 429 and a 5xx are worth a retry, and so are a 2xx or 3xx, as
// the provider may or may not have acted and a second notice beats a
// missing one; any other 4xx, which asking again will get again, is not.
// No answer at all (status 0) is worth a retry.
func Retry(status int) bool {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return true
	case status >= 400:
		return false
	}
	return true
}

// RetryAfter reads a Retry-After header: a number of seconds or an HTTP
// date. It is 0 when the header is missing, malformed or in the past.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
