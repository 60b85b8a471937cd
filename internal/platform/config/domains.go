package config

import (
	"net"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/tocsin-alarm/tocsin/internal/adapter/rdap"
	"github.com/tocsin-alarm/tocsin/internal/platform/apiurl"
)

// Domains are the domain names whose registration is watched: a domain
// that lapses takes every site and mailbox on it down at once while every
// server still answers. Each is looked up at its registry by RDAP, and one
// about to expire opens a warning: an email to staff, never an SMS, never
// public.
type Domains struct {
	// Names are the registered domains, as their registry holds them
	// (example.co.uk, not www.example.co.uk); read, they are lower case
	// and in ASCII (xn--bcher-kva.example for bücher.example).
	Names []string `yaml:"names"`
	// WarnDays is how many days before its expiry a domain warns.
	WarnDays int `yaml:"warn_days"`
	// Every is how often each domain is looked up.
	Every Duration `yaml:"every"`
	// RDAPBootstrap is IANA's file that says which registry answers for
	// each top-level domain.
	RDAPBootstrap string `yaml:"rdap_bootstrap"`
}

// The bounds of the domains section: a registry is asked at most once an
// hour per domain, and a warning more than a year ahead would never end.
const (
	minDomainsEvery = time.Hour
	maxWarnDays     = 365
)

// domains checks the domains section, and writes each name as its
// registry knows it.
func (v *validator) domains(d *Domains) {
	seen := map[string]int{}
	for i, name := range d.Names {
		path := p("domains", "names", i)
		if net.ParseIP(strings.Trim(name, "[]")) != nil {
			v.at(path, "%q is an address, not a domain name", name)
			continue
		}
		if strings.ContainsAny(name, ":/@") {
			v.at(path, "%q is not a domain name: give the name alone, like example.net", name)
			continue
		}
		ascii, err := rdap.Normalise(name)
		if err != nil {
			v.at(path, "%v", err)
			continue
		}
		if reg, ok := registered(ascii); !ok {
			v.at(path, "%q is a public suffix: name a domain registered under it", name)
			continue
		} else if reg != ascii {
			v.at(path, "%q is not a registered domain: watch %s, the name its registry holds", name, reg)
			continue
		}
		// The name, dots made underscores, names the domain's record and
		// its warnings, which allow 63 characters.
		if len(ascii) > 63 {
			v.at(path, "%q is longer than the 63 characters a watched domain may have", name)
			continue
		}
		if first, dup := seen[ascii]; dup {
			v.at(path, "domain %s is listed twice (first as %q)", ascii, d.Names[first])
			continue
		}
		seen[ascii] = i
		d.Names[i] = ascii
	}
	switch {
	case d.WarnDays < 0:
		v.at(p("domains", "warn_days"), "warn_days must not be negative")
	case d.WarnDays > maxWarnDays:
		v.at(p("domains", "warn_days"), "warn_days %d is more than a year: at most %d", d.WarnDays, maxWarnDays)
	}
	switch {
	case d.Every.D() < minDomainsEvery:
		v.at(p("domains", "every"), "every %s is too often to ask a registry: at least %s", d.Every, Duration(minDomainsEvery))
	case d.WarnDays > 0 && d.Every.D() >= time.Duration(d.WarnDays)*24*time.Hour:
		v.at(p("domains", "every"), "every %s is not shorter than warn_days (%d days): a domain could expire between two looks", d.Every, d.WarnDays)
	}
	if _, err := apiurl.Check(d.RDAPBootstrap, "let anyone on the way say where domains are looked up"); err != nil {
		v.at(p("domains", "rdap_bootstrap"), "rdap_bootstrap: %v", err)
	}
}

// registered is the domain its registry holds for name, an ASCII name: the
// public suffix it is under, by the list's ICANN part (a registry's
// suffix, not a private one like github.io), and one label more; false
// when name is a public suffix itself.
func registered(name string) (string, bool) {
	suffix, icann := publicsuffix.PublicSuffix(name)
	for !icann {
		i := strings.IndexByte(suffix, '.')
		if i < 0 {
			break // a top-level domain the list does not know: its own registry
		}
		suffix, icann = publicsuffix.PublicSuffix(suffix[i+1:])
	}
	if name == suffix {
		return "", false
	}
	labels := strings.Split(name, ".")
	return strings.Join(labels[len(labels)-strings.Count(suffix, ".")-2:], "."), true
}
