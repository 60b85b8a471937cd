package xapi

import (
	"net/http"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// route carries requests for X's API hosts to the stand-in, keeping the
// Host header and, in X-Forwarded-Proto, the scheme the client signed.
var route = standin.Route{
	API: func(host string) bool {
		host = strings.ToLower(host)
		return host == "api.x.com" || host == "api.twitter.com"
	},
	Rewrite: func(out, in *http.Request) {
		out.Host = in.URL.Host
		if in.Host != "" {
			out.Host = in.Host
		}
		out.Header.Set("X-Forwarded-Proto", in.URL.Scheme)
	},
}

// Transport returns an http.RoundTripper that carries requests for X's API
// hosts (api.x.com, and api.twitter.com, which X still answers) to the
// stand-in, for code whose URL for X is not set to the stand-in's. It
// changes only where the request goes: the Host header still names X's
// host and X-Forwarded-Proto the scheme, so that the stand-in checks the
// OAuth signature against the URL the client signed, https://api.x.com/…,
// as X does. Requests for loopback addresses go out unchanged. Any other
// request fails, so that a test can never reach the real X or anything
// else by mistake.
func (s *Server) Transport() http.RoundTripper { return s.Server.Transport(route) }

// Client returns an http.Client with Transport, a 10-second timeout and
// redirects not followed.
func (s *Server) Client() *http.Client { return s.Server.Client(route) }
