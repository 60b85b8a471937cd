package graphapi

import (
	"net/http"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// route carries requests for graph.facebook.com to the stand-in.
var route = standin.Route{API: func(host string) bool { return strings.EqualFold(host, "graph.facebook.com") }}

// Transport returns an http.RoundTripper that carries requests for
// graph.facebook.com to the stand-in, changing only scheme and host, for
// code whose URL for Graph is not set to the stand-in's. Requests for
// loopback addresses go out unchanged. Any other request fails, so that a
// test can never reach the real Graph or anything else by mistake.
func (s *Server) Transport() http.RoundTripper { return s.Server.Transport(route) }

// Client returns an http.Client with Transport, a 10-second timeout and
// redirects not followed.
func (s *Server) Client() *http.Client { return s.Server.Client(route) }
