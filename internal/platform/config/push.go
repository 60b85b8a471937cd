package config

import (
	"crypto/sha256"
	"net"
	"net/netip"
	"time"
)

// Push makes a server one that reports in rather than being checked: a
// cron job or a backup that no prober can reach calls the push endpoint
// with its token each time it has run. No report within Every and Grace
// of the last one is a failure; so is a report of failure.
type Push struct {
	// Every is how often the job runs and reports.
	Every Duration `yaml:"every"`
	// Grace is how late a report may be: a job's run time varies.
	Grace Duration `yaml:"grace"`
	// TokenEnv/File name the token the job reports with: whoever has it
	// can say the job ran, so it is a secret like a password.
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	Token     Secret `yaml:"-"`
}

// Deadline is how long after its last report, or after the push service
// started watching it, a push server may stay silent.
func (p *Push) Deadline() time.Duration { return p.Every.D() + p.Grace.D() }

// PushCheck is the check of every push server, as events and pages show
// it: the token is never part of it.
const PushCheck = "push"

// PushService is the push service's HTTP server, which jobs report to.
type PushService struct {
	Listen string `yaml:"listen"`
	// TrustedProxies, as for the status page: the reverse proxies whose
	// X-Forwarded-For names the client that per-client limits count.
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Proxies        []netip.Prefix `yaml:"-"`
}

// IsPush reports whether the server reports in rather than being checked.
func (s *Server) IsPush() bool { return s.Push != nil }

// The bounds of push servers: a token long enough not to be guessed and
// short enough for a URL; a job that runs at least every few seconds and
// at most about monthly, and a grace below a week.
const (
	MinPushToken = 16
	MaxPushToken = 128
	minPushEvery = 5 * time.Second
	maxPushEvery = 35 * 24 * time.Hour
	minPushGrace = time.Second
	maxPushGrace = 7 * 24 * time.Hour
	// DefaultPushListen is where the push service listens by default: on
	// loopback, for a reverse proxy or the jobs of this host.
	DefaultPushListen = "127.0.0.1:8091"
)

// ValidPushToken reports whether s may be a push token: letters, digits,
// '-' and '_' (it is a part of a URL path), of a length within bounds.
func ValidPushToken(s string) bool {
	if len(s) < MinPushToken || len(s) > MaxPushToken {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// push checks a push server. Nothing said of the token says the token.
func (v *validator) push(path []any, srv *Server) {
	if srv.Push == nil {
		v.at(append(path, "check"), "check push needs a push section: every, grace, and token_env or token_file")
		return
	}
	if srv.Check != "" && srv.Check != PushCheck {
		v.at(append(path, "check"), "a server with push reports in and has no check: drop check, or write check: push")
	}
	srv.Check = PushCheck
	if srv.ExpectStatus != 0 || srv.Keyword != "" || srv.StartTLS || srv.CertWarnDays != 0 || srv.Login != nil {
		v.at(path, "a push server is not checked: expect_status, keyword, starttls, cert_warn_days and login do not apply")
	}
	if srv.Interval != 0 || srv.Timeout != 0 {
		v.at(path, "a push server is not checked: give push.every and push.grace, not interval or timeout")
	}
	pp := append(path, "push")
	pu := srv.Push
	v.pushSpan(pp, "every", pu.Every, minPushEvery, maxPushEvery, "how often the job reports, like 24h", " (a monthly job)")
	v.pushSpan(pp, "grace", pu.Grace, minPushGrace, maxPushGrace, "how late a report may be, like 1h", "")
	pu.Token = v.secret(usedBy("push"), pp, "token", pu.TokenEnv, pu.TokenFile, true)
	if pu.Token.IsSet() && !ValidPushToken(pu.Token.Reveal()) {
		key := "token_env"
		if pu.TokenFile != "" {
			key = "token_file"
		}
		v.at(append(pp, key), "the token must be %d to %d letters, digits, '-' or '_': make one with: openssl rand -hex 24", MinPushToken, MaxPushToken)
	}
}

// pushes checks what push servers share: no two have one token (a report
// must name one server), and the push service's own server.
// pushSpan checks push.<key>, a duration that must be given, from lo to
// hi; what says what it is for when it is missing, and longest follows the
// bound when it is too long.
func (v *validator) pushSpan(pp []any, key string, d Duration, lo, hi time.Duration, what, longest string) {
	switch {
	case d == 0:
		v.at(pp, "push.%s is missing: %s", key, what)
	case d.D() < lo:
		v.at(append(pp, key), "%s %s is too short: at least %s", key, d, Duration(lo))
	case d.D() > hi:
		v.at(append(pp, key), "%s %s is too long: at most %s%s", key, d, Duration(hi), longest)
	}
}

func (v *validator) pushes(c *Config) {
	seen := map[[32]byte]string{}
	for i, b := range c.Boxes {
		for j, s := range b.Servers {
			if s.Push == nil || !s.Push.Token.IsSet() {
				continue
			}
			sum := sha256.Sum256([]byte(s.Push.Token.Reveal()))
			if other, dup := seen[sum]; dup {
				v.at(p("boxes", i, "servers", j, "push"), "server %q has the same token as server %q: give each job its own", s.ID, other)
				continue
			}
			seen[sum] = s.ID
		}
	}
	if _, _, err := net.SplitHostPort(c.Push.Listen); err != nil {
		v.at(p("push", "listen"), "listen %q must be host:port, like %s", c.Push.Listen, DefaultPushListen)
	}
	c.Push.Proxies = v.proxies(p("push", "trusted_proxies"), c.Push.TrustedProxies)
}
