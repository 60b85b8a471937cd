package twilioapi

import (
	"net/http"
	"strings"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// route carries requests for api.twilio.com, and for the regional hosts
// twilio-go builds from TWILIO_EDGE and TWILIO_REGION (api.….twilio.com),
// to the stand-in.
var route = standin.Route{API: func(host string) bool {
	host = strings.ToLower(host)
	return host == "api.twilio.com" || strings.HasPrefix(host, "api.") && strings.HasSuffix(host, ".twilio.com")
}}

// Transport returns an http.RoundTripper for code that builds its own
// twilio-go client: twilio-go's base URL is a constant, so the transport
// sends requests for api.twilio.com (and for the regional hosts twilio-go
// builds from TWILIO_EDGE and TWILIO_REGION, api.….twilio.com) to the
// stand-in instead, changing only scheme and host. Requests for loopback
// addresses go out unchanged. Any other request fails, so that a test can
// never reach the real Twilio or anything else by mistake.
func (s *Server) Transport() http.RoundTripper { return s.Server.Transport(route) }

// Client returns an http.Client with Transport and the behaviour of
// twilio-go's default client: a 10-second timeout and redirects not
// followed.
func (s *Server) Client() *http.Client { return s.Server.Client(route) }

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

// loopbackOnly carries webhooks: a test may point a StatusCallback or an
// inbound webhook at a public address, but the stand-in never posts there.
type loopbackOnly struct{ base *http.Transport }

func (t loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !standin.Loopback(req.URL.Hostname()) {
		return nil, standin.Refuse("twilioapi", req)
	}
	return t.base.RoundTrip(req)
}

func (t loopbackOnly) CloseIdleConnections() { t.base.CloseIdleConnections() }
