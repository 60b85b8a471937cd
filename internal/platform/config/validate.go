package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// validator collects problems with where each one is.
type validator struct {
	file     string
	env      Env
	problems Problems
	// runs is the services of the process the config is loaded for; nil
	// for every service (tocsin validate, the demo). A secret none of
	// them reads is checked for its form but never read.
	runs []string
}

// reads reports whether the process reads a secret that the services
// users read.
func (v *validator) reads(users []string) bool {
	if v.runs == nil {
		return true
	}
	for _, u := range users {
		if slices.Contains(v.runs, u) {
			return true
		}
	}
	return false
}

// at reports a problem at the node that path leads to (map keys and list
// indexes), or at the deepest part of it that exists.
func (v *validator) at(path []any, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Msg: fmt.Sprintf(format, args...), path: slices.Clone(path)})
}

// lineOf is the line of the node that path leads to in the document root.
func lineOf(root *yaml.Node, path []any) int {
	n := root
	for _, p := range path {
		next := child(n, p)
		if next == nil {
			break
		}
		n = next
	}
	return n.Line
}

func child(n *yaml.Node, p any) *yaml.Node {
	switch k := p.(type) {
	case string:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == k {
					return n.Content[i+1]
				}
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && k < len(n.Content) {
			return n.Content[k]
		}
	}
	return nil
}

// p builds a path; it reads better than []any{…} at every call.
func p(parts ...any) []any { return parts }

var (
	colourRE = regexp.MustCompile(`^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	phoneRE  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	envRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func (v *validator) validate(c *Config) {
	if c.Site.Name == "" {
		v.at(p("site"), "site.name is missing: the name people know the provider by")
	}
	if c.Site.StatusURL != "" {
		v.webURL(p("site", "status_url"), c.Site.StatusURL)
	}
	v.checks(c)
	locations := map[string]bool{}
	if len(c.Locations) == 0 {
		v.at(p("locations"), "locations is missing: list at least one place the servers are checked from")
	}
	for i, l := range c.Locations {
		v.token(p("locations", i), "location", l)
		if l == events.PushLocation {
			v.at(p("locations", i), "location %q is reserved: push servers report as from it", l)
		}
		if locations[l] {
			v.at(p("locations", i), "location %q is listed twice", l)
		}
		locations[l] = true
	}
	for _, id := range slices.Sorted(maps.Keys(c.Roles)) {
		r := c.Roles[id]
		v.token(p("roles", id), "role", id)
		if r.Label == "" {
			v.at(p("roles", id), "role %q needs a label", id)
		}
		if r.Colour != "" && !colourRE.MatchString(r.Colour) {
			v.at(p("roles", id, "colour"), "colour %q must be #rgb or #rrggbb", r.Colour)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Datacentres)) {
		d := c.Datacentres[id]
		v.token(p("datacentres", id), "datacentre", id)
		if d.Name == "" {
			v.at(p("datacentres", id), "datacentre %q needs a name", id)
		}
		if d.Email != "" {
			v.email(p("datacentres", id, "email"), d.Email)
		}
	}
	v.boxes(c)
	v.failover(c)
	v.staff(c)
	v.oncall(c)
	v.notify(c)
	v.policies(c)
	if c.Incidents.GroupWindow < 0 {
		v.at(p("incidents", "group_window"), "group_window must not be negative")
	}
	v.escalation(p("escalation"), &c.Escalation)
	for _, id := range slices.Sorted(maps.Keys(c.Datacentres)) {
		if d := c.Datacentres[id]; d.Escalation != nil {
			v.escalation(p("datacentres", id, "escalation"), d.Escalation)
		}
	}
	for i, b := range c.Boxes {
		if b.Escalation != nil {
			v.escalation(p("boxes", i, "escalation"), b.Escalation)
		}
	}
	for i, m := range c.Maintenance {
		path := p("maintenance", i)
		if len(m.Servers) == 0 {
			v.at(path, "a maintenance window needs servers")
		}
		for j, s := range m.Servers {
			if _, ok := c.Target(s); !ok {
				v.at(p("maintenance", i, "servers", j), "no server %q in any box", s)
			}
		}
		if m.From.IsZero() || m.Until.IsZero() {
			v.at(path, "a maintenance window needs from and until")
		} else if !m.Until.After(m.From) {
			v.at(p("maintenance", i, "until"), "until (%s) must be after from (%s)", m.Until.Format(time.RFC3339), m.From.Format(time.RFC3339))
		}
	}
	v.providers(c)
	v.bus(&c.Bus)
	if _, _, err := net.SplitHostPort(c.Statuspage.Listen); err != nil {
		v.at(p("statuspage", "listen"), "listen %q must be host:port, like 127.0.0.1:8080", c.Statuspage.Listen)
	}
	if sp := &c.Statuspage; sp.AdminTokenEnv != "" || sp.AdminTokenFile != "" {
		sp.AdminToken = v.secret(usedBy("statuspage"), p("statuspage"), "admin_token", sp.AdminTokenEnv, sp.AdminTokenFile, true)
	}
	if c.Statuspage.History < 0 {
		v.at(p("statuspage", "history"), "history must not be negative")
	}
	v.surfaces(c)
	v.domains(&c.Domains)
	v.pushes(c)
	v.watchdog(c)
	v.selfwatch(c)
}

func (v *validator) checks(c *Config) {
	ch := c.Checks
	if ch.CAFile != "" {
		c.Checks.CAFile = v.resolve(ch.CAFile)
		if b, err := os.ReadFile(c.Checks.CAFile); err != nil {
			v.at(p("checks", "ca_file"), "ca_file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.at(p("checks", "ca_file"), "ca_file %s holds no PEM certificate", c.Checks.CAFile)
		}
	}
	v.interval(p("checks", "interval"), ch.Interval)
	v.timeout(p("checks", "timeout"), ch.Timeout, ch.Interval)
	if ch.HangAfter < 0 || ch.HangAfter > 0 && ch.HangAfter.D() < 100*time.Millisecond {
		v.at(p("checks", "hang_after"), "hang_after %s: want at least 100ms, or leave it out for a third of the timeout", ch.HangAfter)
	} else if ch.HangAfter > 0 && ch.Timeout > 0 && ch.HangAfter >= ch.Timeout {
		v.at(p("checks", "hang_after"), "hang_after %s must be shorter than the timeout %s", ch.HangAfter, ch.Timeout)
	}
	if ch.RecoverAfter < 1 {
		v.at(p("checks", "recover_after"), "recover_after must be at least 1")
	}
	if fl := ch.Flapping; fl.Limit() < 0 || fl.Window < 0 || fl.Settle < 0 {
		v.at(p("checks", "flapping"), "flapping needs changes (0 to turn it off), and a window and a settle time when it is on, none negative")
	}
	if ch.Verify.Quorum < 1 {
		v.at(p("checks", "verify", "quorum"), "verify.quorum must be at least 1: one confirming failure at the least")
	}
	if ch.Verify.Locations < 0 {
		v.at(p("checks", "verify", "locations"), "verify.locations must not be negative")
	}
	if ch.Verify.Quorum > max(ch.Verify.Locations, 1) {
		v.at(p("checks", "verify", "quorum"), "verify.quorum (%d) cannot exceed the locations asked (%d)", ch.Verify.Quorum, ch.Verify.Locations)
	}
}

func (v *validator) interval(path []any, d Duration) {
	if d != 0 && d.D() < time.Second {
		v.at(path, "interval %s is too short: at least 1s", d)
	}
}

func (v *validator) timeout(path []any, d, interval Duration) {
	if d == 0 {
		return
	}
	if d.D() < 10*time.Millisecond {
		v.at(path, "timeout %s is too short: at least 10ms", d)
	}
	if interval > 0 && d > interval {
		v.at(path, "timeout %s is longer than the interval %s", d, interval)
	}
}

func (v *validator) boxes(c *Config) {
	if len(c.Boxes) == 0 {
		v.at(p("boxes"), "boxes is missing: there is nothing to watch")
	}
	boxes, servers := map[string]bool{}, map[string]bool{}
	for i, b := range c.Boxes {
		path := p("boxes", i)
		v.token(append(path, "id"), "box id", b.ID)
		if boxes[b.ID] && b.ID != "" {
			v.at(append(path, "id"), "box id %q is used twice", b.ID)
		}
		boxes[b.ID] = true
		if b.Name == "" {
			v.at(path, "box %q needs a name", b.ID)
		}
		if b.Role != "" {
			if _, ok := c.Roles[b.Role]; !ok {
				v.at(p("boxes", i, "role"), "no role %q under roles", b.Role)
			}
		}
		if b.Datacentre != "" {
			if _, ok := c.Datacentres[b.Datacentre]; !ok {
				v.at(p("boxes", i, "datacentre"), "no datacentre %q under datacentres", b.Datacentre)
			}
		}
		v.interval(p("boxes", i, "interval"), b.Interval)
		if len(b.Servers) == 0 {
			v.at(path, "box %q has no servers", b.ID)
		}
		for j, s := range b.Servers {
			spath := p("boxes", i, "servers", j)
			v.token(append(spath, "id"), "server id", s.ID)
			if servers[s.ID] && s.ID != "" {
				v.at(append(spath, "id"), "server id %q is used twice", s.ID)
			}
			servers[s.ID] = true
			if s.Push != nil || s.Check == PushCheck {
				v.push(spath, &c.Boxes[i].Servers[j])
				continue
			}
			v.check(p("boxes", i, "servers", j), &c.Boxes[i].Servers[j])
			v.interval(p("boxes", i, "servers", j, "interval"), s.Interval)
			if s.Timeout == 0 && s.Interval == 0 && b.Timeout == 0 && b.Interval == 0 {
				continue // the defaults were checked under checks:
			}
			t := c.target(&c.Boxes[i], &c.Boxes[i].Servers[j])
			v.timeout(p("boxes", i, "servers", j, "timeout"), Duration(t.Timeout), Duration(t.Interval))
		}
	}
}

// Schemes are the check types, by the scheme of the check URL.
var Schemes = []string{"http", "https", "tcp", "smtp", "smtps", "imap", "imaps", "pop3", "pop3s", "ftp", "dns", "mysql", "postgres", "postgresql", "icmp"}

// tlsSchemes can warn of a certificate about to expire.
var tlsSchemes = []string{"https", "smtps", "imaps", "pop3s"}

var dnsTypes = []string{"A", "AAAA", "MX", "NS", "TXT", "CNAME", "SOA", "PTR", "SRV", "CAA"}

func (v *validator) check(path []any, srv *Server) {
	s := srv.Check
	at := append(path, "check")
	if s == "" {
		v.at(at, "check is missing: a URL like https://www.example.net/, smtp://mx1.example.net or tcp://db1.example.net:3306")
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		v.at(at, "check is not a URL: %v", errors.Unwrap(err))
		return
	}
	if _, has := u.User.Password(); has {
		v.at(at, "check %q holds a password: give it under login with password_env or password_file", u.Redacted())
		return
	}
	if !slices.Contains(Schemes, u.Scheme) {
		v.at(at, "check %q: unsupported scheme %q (supported: %s)", s, u.Scheme, strings.Join(Schemes, ", "))
		return
	}
	if u.Hostname() == "" {
		v.at(at, "check %q has no host", s)
		return
	}
	switch u.Scheme {
	case "tcp":
		if u.Port() == "" {
			v.at(at, "check %q needs a port, like tcp://host:25", s)
		}
	case "icmp":
		if u.Port() != "" {
			v.at(at, "check %q: ICMP has no port", s)
		}
	case "dns":
		if strings.Trim(u.Path, "/") == "" {
			v.at(at, "check %q needs a name to look up, like dns://ns1.example.net/example.net?type=MX", s)
		}
		if t := u.Query().Get("type"); t != "" && !slices.Contains(dnsTypes, strings.ToUpper(t)) {
			v.at(at, "check %q: unknown record type %q (known: %s)", s, t, strings.Join(dnsTypes, ", "))
		}
	}
	isHTTP := u.Scheme == "http" || u.Scheme == "https"
	if srv.ExpectStatus != 0 && (!isHTTP || srv.ExpectStatus < 100 || srv.ExpectStatus > 599) {
		v.at(append(path, "expect_status"), "expect_status %d: an HTTP status (100 to 599) for http or https checks", srv.ExpectStatus)
	}
	if srv.Keyword != "" && !isHTTP {
		v.at(append(path, "keyword"), "keyword applies to http and https checks only")
	}
	if srv.StartTLS && u.Scheme != "smtp" {
		v.at(append(path, "starttls"), "starttls applies to smtp checks only (smtps, imaps and pop3s use TLS from the start)")
	}
	if srv.CertWarnDays < 0 {
		v.at(append(path, "cert_warn_days"), "cert_warn_days must not be negative")
	} else if srv.CertWarnDays > 0 && !slices.Contains(tlsSchemes, u.Scheme) && !(u.Scheme == "smtp" && srv.StartTLS) {
		v.at(append(path, "cert_warn_days"), "cert_warn_days needs a TLS check: %s, or smtp with starttls", strings.Join(tlsSchemes, ", "))
	}
	if l := srv.Login; l != nil {
		lpath := append(path, "login")
		if u.Scheme != "ftp" {
			v.at(lpath, "login applies to ftp checks only")
		}
		if l.Username == "" {
			v.at(lpath, "login needs a username")
		}
		l.Password = v.secret(usedBy("prober"), lpath, "password", l.PasswordEnv, l.PasswordFile, true)
	}
}

// secret reads name_env or name_file. The value never appears in a
// problem. users are the services that read it: a process running none of
// them has the reference checked but never reads the secret, so that a
// container of the status page, say, holds no SMS provider's token.
func (v *validator) secret(users []string, path []any, name, env, file string, required bool) Secret {
	switch {
	case env != "" && file != "":
		v.at(append(path, name+"_env"), "give %s_env or %s_file, not both", name, name)
	case env != "":
		if !envRE.MatchString(env) {
			v.at(append(path, name+"_env"), "%s_env %q is not an environment variable name", name, env)
			return Secret{}
		}
		if !v.reads(users) {
			return Secret{}
		}
		val, ok := v.env(env)
		if !ok || val == "" {
			v.at(append(path, name+"_env"), "environment variable %s (%s) is not set", env, name)
			return Secret{}
		}
		return Secret{val}
	case file != "":
		if !v.reads(users) {
			return Secret{}
		}
		b, err := os.ReadFile(v.resolve(file))
		if err != nil {
			v.at(append(path, name+"_file"), "%s_file: %v", name, err)
			return Secret{}
		}
		val := strings.TrimSpace(string(b))
		if val == "" {
			v.at(append(path, name+"_file"), "%s_file %s is empty", name, file)
		}
		return Secret{val}
	case required:
		v.at(path, "%s is missing: give %s_env (an environment variable) or %s_file (a file); never the secret itself", name, name, name)
	}
	return Secret{}
}

// resolve makes a path relative to the config file's directory.
func (v *validator) resolve(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(v.file), path)
}

func (v *validator) token(path []any, what, s string) {
	if s == "" {
		v.at(path, "%s is missing", what)
	} else if !events.ValidToken(s) {
		v.at(path, "%s %q must be letters, digits, '-' or '_' (at most 63), starting with a letter or digit", what, s)
	}
}

func (v *validator) email(path []any, s string) {
	if _, err := mail.ParseAddress(s); err != nil {
		v.at(path, "%q is not an email address", s)
	}
}

func (v *validator) webURL(path []any, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.at(path, "%q must be an http or https URL", s)
	}
}

func (v *validator) apiURL(path []any, s string) {
	if s != "" {
		v.webURL(path, s)
	}
}
