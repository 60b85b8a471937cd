// Package webhook tells an HTTP endpoint of a failover action: a POST of a
// JSON body, signed with HMAC-SHA256 so the receiver knows it came from
// Tocsin, timestamped so that a captured request cannot be replayed later,
// and carrying an id that stays the same when the request is sent again,
// so that the receiver can recognise a retry.
//
// The signature is "sha256=" and the hex HMAC-SHA256, keyed with the
// shared secret, of the timestamp header's value, a ".", and the body:
//
//	X-Tocsin-Timestamp: 1795227320
//	X-Tocsin-Signature: sha256=hex(HMAC-SHA256(secret, "1795227320." + body))
//	X-Tocsin-Id:        web1/state/4-1795227320000/remove
//
// A receiver recomputes it over the raw body, compares in constant time,
// and refuses a timestamp more than a few minutes from its own clock
// (Verify does all three).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// The request headers.
const (
	HeaderSignature = "X-Tocsin-Signature"
	HeaderTimestamp = "X-Tocsin-Timestamp"
	HeaderID        = "X-Tocsin-Id"
)

// Client posts to one webhook.
type Client struct {
	url    string
	secret []byte
	http   *http.Client
	now    func() time.Time
}

// New returns a client for the webhook at rawURL, signing with secret;
// each request may take timeout.
func New(rawURL string, secret []byte, timeout time.Duration, now func() time.Time) *Client {
	if now == nil {
		now = time.Now
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Client{
		url: rawURL, secret: secret, now: now,
		http: &http.Client{
			Timeout: timeout,
			// A redirect would send the request, and its signature,
			// somewhere the config did not name.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Where describes the webhook without its query, which may hold a token.
func (c *Client) Where() string { return Redact(c.url) }

// Redact is rawURL without user info, query or fragment.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// Sign is the signature of body sent at timestamp (Unix seconds).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a request as a receiver should: the signature over the
// timestamp and the raw body, and the timestamp within tolerance of now.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not a Unix time", HeaderTimestamp, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%s is %s from now: a replay, or a clock far off", HeaderTimestamp, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(h.Get(HeaderSignature)), []byte(Sign(secret, ts, body))) {
		return fmt.Errorf("%s does not match", HeaderSignature)
	}
	return nil
}

// Error is a request the webhook did not take.
type Error struct {
	Where  string // the webhook, redacted
	Status int    // 0: no answer
	Body   string // the start of the answer, for staff to read
	Err    error  // why there was no answer
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("webhook %s: %v", e.Where, e.Err)
	}
	msg := fmt.Sprintf("webhook %s answered %d %s", e.Where, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Send posts body with the id of the action it tells of. It returns nil
// for a 2xx answer. An error marked bus.Permanent is a refusal that
// sending again cannot change (a 4xx other than 408, 425 and 429, or a
// redirect); any other (no answer in time, a refused connection, a 5xx)
// is worth a retry.
func (c *Client) Send(ctx context.Context, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return bus.Permanent(&Error{Where: c.Where(), Err: errors.New("the url does not make a request")})
	}
	ts := strconv.FormatInt(c.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tocsin-failover")
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(c.secret, ts, body))
	resp, err := c.http.Do(req)
	if err != nil {
		// Not the url.Error as it is: it repeats the URL, query and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", c.http.Timeout)
		}
		return &Error{Where: c.Where(), Err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &Error{Where: c.Where(), Status: resp.StatusCode, Body: printable(b, 200)}
	switch {
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooEarly, resp.StatusCode == http.StatusTooManyRequests:
		return e
	}
	return bus.Permanent(e)
}

// printable is the start of an answer on one line.
func printable(b []byte, n int) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
