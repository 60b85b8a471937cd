package twiliorest

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/platform/apiurl"
)

// DefaultTimeout bounds one request to Twilio when the config says nothing.
const DefaultTimeout = 10 * time.Second

var (
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	alnumRE      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	// E164RE is a phone number in international form.
	E164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// Account is what every Twilio adapter is configured with, whatever it
// sends: whose account, where the API is, where Twilio reports progress,
// and how long one request may take.
type Account struct {
	SID, AuthToken string
	// APIURL, when set, is where requests go instead of Twilio's API,
	// keeping their path below it. Plain http is allowed only on
	// loopback, since every request carries the auth token.
	APIURL string
	// StatusCallback, when set, is the URL Twilio reports progress to.
	StatusCallback string
	// Timeout bounds one request; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Checked is an Account once checked: the API URL parsed (nil: Twilio's
// own), the timeout filled in, and the transport whose connection pool
// every request of the adapter shares. Begin starts each adapter call.
type Checked struct {
	API     *url.URL
	Timeout time.Duration
	Base    http.RoundTripper
	// Now reads a Retry-After given as a date.
	Now func() time.Time

	sid, authToken string
}

// Check reports every problem with a at once; texts never hold the auth
// token.
func (a Account) Check() (Checked, []error) {
	var problems []error
	if !accountSIDRE.MatchString(a.SID) {
		problems = append(problems, fmt.Errorf("account SID %q: want \"AC\" and 32 hex digits, as Twilio's console shows it", a.SID))
	}
	switch {
	case a.AuthToken == "":
		problems = append(problems, errors.New("auth token is empty"))
	case !alnumRE.MatchString(a.AuthToken):
		// twilio-go refuses it too, and Twilio never issues one.
		problems = append(problems, errors.New("auth token holds characters other than letters and digits; check for a stray newline or quote"))
	}
	c := Checked{Now: time.Now, sid: a.SID, authToken: a.AuthToken}
	if a.APIURL != "" {
		u, err := apiurl.Check(a.APIURL, "send the auth token in clear text")
		if err != nil {
			problems = append(problems, err)
		}
		c.API = u
	}
	if a.StatusCallback != "" && !WebURL(a.StatusCallback) {
		problems = append(problems, fmt.Errorf("status callback %q: want an absolute http or https URL", a.StatusCallback))
	}
	timeout, err := apicall.Timeout(a.Timeout, DefaultTimeout)
	if err != nil {
		problems = append(problems, err)
	}
	c.Timeout = timeout
	c.Base = apicall.Transport()
	return c, problems
}

// WebURL reports whether s is an absolute http or https URL.
func WebURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}
