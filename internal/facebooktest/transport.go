package facebooktest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Transport returns an http.RoundTripper that carries requests for
// graph.facebook.com to the stand-in, changing only scheme and host, for
// code whose URL for Graph is not set to the stand-in's. Requests for
// loopback addresses go out unchanged. Any other request fails, so that a
// test can never reach the real Graph or anything else by mistake.
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
	case strings.EqualFold(host, "graph.facebook.com"):
		out := req.Clone(req.Context()) // a RoundTripper must not change req
		out.URL.Scheme, out.URL.Host, out.Host = t.target.Scheme, t.target.Host, ""
		return t.base.RoundTrip(out)
	case loopback(host):
		return t.base.RoundTrip(req)
	default:
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("facebooktest: refusing to send to %s: tests reach only the stand-in and loopback", req.URL.Host)
	}
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
