// This file is twiliosms's transport: the two adapters make the same
// requests to the same API, and keeping each package whole keeps either
// free to change without the other.

package twiliovoice

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// answer is what the transport saw of Twilio's answer, which twilio-go
// does not pass on: its status even when the body is not Twilio's JSON,
// and its Retry-After.
type answer struct {
	status     int
	retryAfter time.Duration
}

// callTransport carries the requests of one Call. It bounds them by the
// Call's context, sends them to the configured API URL when there is one,
// and notes the answer's status and Retry-After.
type callTransport struct {
	ctx  context.Context
	base http.RoundTripper
	api  *url.URL // nil: leave the URL as twilio-go built it
	now  func() time.Time
	ans  *answer
}

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// req's context holds http.Client's deadline; ending it also when
	// the Call's context ends makes either bound the request. The
	// Call's context ends when Call returns, which releases rctx.
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
	t.ans.status = resp.StatusCode
	t.ans.retryAfter = retryAfter(resp.Header.Get("Retry-After"), t.now())
	// twilio-go stops reading an answer at the end of its JSON, and never
	// closes the body of an error answer. Unless the body's end happened
	// to arrive with the JSON, the connection would be stuck or thrown
	// away, and the next call would pay for a new one and its TLS
	// handshake. Reading the answer here to its end, bounded (Twilio's
	// are a few kilobytes), returns the connection to the pool; twilio-go
	// decodes the copy.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read twilio's %d answer: %w", resp.StatusCode, err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// retryAfter reads a Retry-After header: a number of seconds or an HTTP
// date. It is 0 when the header is missing, malformed or in the past.
func retryAfter(v string, now time.Time) time.Duration {
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
