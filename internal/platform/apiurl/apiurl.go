// Package apiurl checks the base URL of a provider's API (Twilio, X,
// Facebook) as the config may override it: for a proxy, a regional
// endpoint, or a stand-in on this machine.
package apiurl

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Check parses s and refuses what a client must not send credentials to: a
// relative URL, one with a user, query or fragment, and plain http to any
// host but this machine. exposed says what plain http would give away, as
// in "plain http would <exposed>; use https".
func Check(s, exposed string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("api url %q: %w", s, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Hostname() == "":
		return nil, fmt.Errorf("api url %q: want an absolute http or https URL", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("api url %q: want no user, query or fragment", s)
	case u.Scheme == "http" && !Loopback(u.Hostname()):
		return nil, fmt.Errorf("api url %q: plain http would %s; use https", s, exposed)
	}
	return u, nil
}

// Loopback reports whether host names this machine: "localhost" or a
// loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
