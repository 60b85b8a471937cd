package xtest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Transport returns an http.RoundTripper that carries requests for X's API
// hosts (api.x.com, and api.twitter.com, which X still answers) to the
// stand-in, for code whose URL for X is not set to the stand-in's. It
// changes only where the request goes: the Host header still names X's
// host and X-Forwarded-Proto the scheme, so that the stand-in checks the
// OAuth signature against the URL the client signed, https://api.x.com/…,
// as X does. Requests for loopback addresses go out unchanged. Any other
// request fails, so that a test can never reach the real X or anything
// else by mistake.
func (s *Server) Transport() http.RoundTripper {
	target, _ := url.Parse(s.URL) // httptest's own URL always parses
	return &rewriter{target: target, base: s.srv.Client().Transport}
}

// Client returns an http.Client with Transport, a 10-second timeout and
// redirects not followed.
func (s *Server) Client() *http.Client {
	return &http.Client{
		Transport:     s.Transport(),
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type rewriter struct {
	target *url.URL
	base   http.RoundTripper
}

func (t *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	switch {
	case xAPIHost(host):
		out := req.Clone(req.Context()) // a RoundTripper must not change req
		out.Host = req.URL.Host
		if req.Host != "" {
			out.Host = req.Host
		}
		out.Header.Set("X-Forwarded-Proto", req.URL.Scheme)
		out.URL.Scheme, out.URL.Host = t.target.Scheme, t.target.Host
		return t.base.RoundTrip(out)
	case loopback(host):
		return t.base.RoundTrip(req)
	default:
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("xtest: refusing to send to %s: tests reach only the stand-in and loopback", req.URL.Host)
	}
}

func xAPIHost(host string) bool {
	host = strings.ToLower(host)
	return host == "api.x.com" || host == "api.twitter.com"
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
