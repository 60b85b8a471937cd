package apiurl

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"https://api.twilio.com", ""},
		{"https://graph.example.net/v21.0/", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://[::1]:8080/base", ""},
		{"http://LOCALHOST:1", ""},
		{"http://api.twilio.com", "plain http would send the token in clear text; use https"},
		{"http://127.0.0.1.example.net", "plain http"},
		{"api.twilio.com", "want an absolute http or https URL"},
		{"ftp://api.twilio.com", "want an absolute http or https URL"},
		{"https://user:pw@api.twilio.com", "want no user, query or fragment"},
		{"https://api.twilio.com/?a=b", "want no user, query or fragment"},
		{"https://api.twilio.com/#x", "want no user, query or fragment"},
		{"https://api twilio", `api url "https://api twilio"`},
	} {
		u, err := Check(tc.url, "send the token in clear text")
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.url, err)
		case tc.err == "" && u.String() != tc.url:
			t.Errorf("%s: parsed as %s", tc.url, u)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one saying %q", tc.url, err, tc.err)
		}
	}
}
