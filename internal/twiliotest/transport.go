package twiliotest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
)

// Transport returns an http.RoundTripper for code that builds its own
// twilio-go client: twilio-go's base URL is a constant, so the transport
// sends requests for api.twilio.com (and for the regional hosts twilio-go
// builds from TWILIO_EDGE and TWILIO_REGION, api.….twilio.com) to the
// stand-in instead, changing only scheme and host. Requests for loopback
// addresses go out unchanged. Any other request fails, so that a test can
// never reach the real Twilio or anything else by mistake.
func (s *Server) Transport() http.RoundTripper {
	target, _ := url.Parse(s.URL) // httptest's own URL always parses
	return &rewriter{target: target, base: s.srv.Client().Transport}
}

// Client returns an http.Client with Transport and the behaviour of
// twilio-go's default client: a 10-second timeout and redirects not
// followed.
func (s *Server) Client() *http.Client {
	return &http.Client{
		Transport:     s.Transport(),
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RestClient returns a twilio-go client logged in as the stand-in's
// account whose requests reach the stand-in, for tests of the stand-in
// and of code that is handed a *twilio.RestClient.
func (s *Server) RestClient() *twilio.RestClient {
	c := &client.Client{
		Credentials: client.NewCredentials(s.AccountSID, s.AuthToken),
		HTTPClient:  s.Client(),
	}
	c.SetAccountSid(s.AccountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
}

type rewriter struct {
	target *url.URL
	base   http.RoundTripper
}

func (t *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	switch {
	case twilioAPIHost(host):
		out := req.Clone(req.Context()) // a RoundTripper must not change req
		out.URL.Scheme, out.URL.Host, out.Host = t.target.Scheme, t.target.Host, ""
		return t.base.RoundTrip(out)
	case loopback(host):
		return t.base.RoundTrip(req)
	default:
		return nil, refuse(req)
	}
}

// loopbackOnly carries webhooks: a test may point a StatusCallback or an
// inbound webhook at a public address, but the stand-in never posts there.
type loopbackOnly struct{ base *http.Transport }

func (t loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !loopback(req.URL.Hostname()) {
		return nil, refuse(req)
	}
	return t.base.RoundTrip(req)
}

func (t loopbackOnly) CloseIdleConnections() { t.base.CloseIdleConnections() }

func refuse(req *http.Request) error {
	if req.Body != nil {
		_ = req.Body.Close() // a RoundTripper closes the body, even on error
	}
	return fmt.Errorf("twiliotest: refusing to send to %s: tests reach only the stand-in and loopback", req.URL.Host)
}

func twilioAPIHost(host string) bool {
	host = strings.ToLower(host)
	return host == "api.twilio.com" || strings.HasPrefix(host, "api.") && strings.HasSuffix(host, ".twilio.com")
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
