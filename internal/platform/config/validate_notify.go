package config

import (
	"crypto/x509"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/apiurl"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func (v *validator) staff(c *Config) {
	if len(c.Staff) == 0 {
		v.at(p("staff"), "staff is missing: nobody would be told of an outage")
	} else if !c.hasEmailStaff() {
		v.at(p("staff"), "no staff member has an email address: email is how staff are told of an outage")
	}
	for i, s := range c.Staff {
		path := p("staff", i)
		if s.Name == "" {
			v.at(path, "a staff member needs a name")
		}
		if s.Email == "" && s.Phone == "" {
			v.at(path, "staff member %q needs an email or a phone", s.Name)
		}
		if _, err := mail.ParseAddress(s.Email); s.Email != "" && err != nil {
			v.at(p("staff", i, "email"), "the email of %q is not an email address", s.Name)
		}
		if s.Phone != "" && !phoneRE.MatchString(s.Phone) {
			v.at(p("staff", i, "phone"), "phone must be in international form, like +447700900001")
		}
		for j, b := range s.Boxes {
			if c.Box(b) == nil {
				v.at(p("staff", i, "boxes", j), "no box %q", b)
			}
		}
		for j, r := range s.Roles {
			if _, ok := c.Roles[r]; !ok {
				v.at(p("staff", i, "roles", j), "no role %q in roles", r)
			}
		}
	}
}

func (v *validator) escalation(path []any, e *Escalation) {
	if e.DatacentreAfter < 0 || e.SocialAfter < 0 {
		v.at(path, "escalation timeouts must not be negative")
	}
	for i, s := range e.AckCancels {
		if s != StepDatacentre && s != StepSocial {
			v.at(append(slices.Clone(path), "ack_cancels", i), "unknown step %q: use datacentre or social", s)
		}
	}
}

func (v *validator) oncall(c *Config) {
	o := c.OnCall
	for i, name := range o.Rotation {
		if _, ok := c.StaffNamed(name); !ok {
			v.at(p("oncall", "rotation", i), "no staff member named %q", name)
		}
	}
	if len(o.Rotation) > 0 && o.Handover.IsZero() {
		v.at(p("oncall"), "a rotation needs a handover: a moment when the first person named took over, like 2026-11-02T09:00:00Z")
	}
	for i, ov := range o.Overrides {
		if _, ok := c.StaffNamed(ov.Name); !ok {
			v.at(p("oncall", "overrides", i, "name"), "no staff member named %q", ov.Name)
		}
		if !ov.Until.After(ov.From) {
			v.at(p("oncall", "overrides", i), "an override needs from and until, until after from")
		}
	}
}

func (v *validator) notify(c *Config) {
	n := &c.Notify
	for _, key := range []string{"oncall", "others"} {
		list := n.OnCallChannels
		if key == "others" {
			list = n.OthersChannels
		}
		for i, ch := range list {
			switch ch {
			case "email":
			case "sms":
				if c.Providers.Twilio == nil {
					v.at(p("notify", key, i), "sms needs providers.twilio")
				}
			default:
				v.at(p("notify", key, i), "unknown channel %q: use sms or email", ch)
			}
		}
	}
	for i, ch := range n.Fallback {
		switch {
		case !slices.Contains(Channels, ch):
			v.at(p("notify", "fallback", i), "unknown channel %q: use %s", ch, strings.Join(Channels, " or "))
		case slices.Index(n.Fallback, ch) < i:
			v.at(p("notify", "fallback", i), "channel %q is listed twice", ch)
		}
	}
	for _, sev := range slices.Sorted(maps.Keys(n.Severity)) {
		r := n.Severity[sev]
		if !events.Severity(sev).Valid() {
			v.at(p("notify", "severity", sev), "unknown severity %q: use warning, degraded or outage", sev)
			continue
		}
		for _, key := range []string{"oncall", "others"} {
			list := r.OnCall
			if key == "others" {
				list = r.Others
			}
			for i, ch := range list {
				switch {
				case ch == "sms" && sev == string(events.SeverityWarning):
					v.at(p("notify", "severity", sev, key, i), "a warning never goes by SMS: nothing has failed yet")
				case ch == "sms" && c.Providers.Twilio == nil:
					v.at(p("notify", "severity", sev, key, i), "sms needs providers.twilio")
				case ch != "sms" && ch != "email":
					v.at(p("notify", "severity", sev, key, i), "unknown channel %q: use sms or email", ch)
				}
			}
		}
		if r.RepeatEvery < 0 {
			v.at(p("notify", "severity", sev, "repeat_every"), "repeat_every must not be negative")
		}
	}
	for _, d := range []struct {
		name string
		d    Duration
	}{{"group_wait", n.GroupWait}, {"group_window", n.GroupWindow}, {"update_every", n.UpdateEvery}, {"repeat_every", n.RepeatEvery}, {"fallback_after", n.FallbackAfter}} {
		if d.d < 0 {
			v.at(p("notify", d.name), "%s must not be negative", d.name)
		}
	}
	if _, _, err := net.SplitHostPort(n.Listen); err != nil {
		v.at(p("notify", "listen"), "listen %q must be host:port, like 127.0.0.1:8081", n.Listen)
	}
	if n.PublicURL != "" {
		if u, err := url.Parse(n.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			v.at(p("notify", "public_url"), "public_url must be an http(s) URL, like https://tocsin.example.net")
		}
		n.LinkKey = v.secret(usedBy("notifier"), p("notify"), "link_key", n.LinkKeyEnv, n.LinkKeyFile, true)
	}
}

func (v *validator) providers(c *Config) {
	pr := &c.Providers
	if s := pr.SMTP; s != nil {
		// Staff email, the datacentre's ticket, and the off-site page's
		// stale alert when it has no mail server of its own.
		users := usedBy("notifier", "escalator")
		if a := c.Statuspage.StaleAlert; a != nil && a.SMTP == nil {
			users = append(users, "statuspage")
		}
		v.smtp(users, p("providers", "smtp"), s)
	} else if c.hasEmailStaff() {
		v.at(p("providers"), "providers.smtp is missing: staff with an email address could not be told")
	}
	if t := pr.Twilio; t != nil {
		path := p("providers", "twilio")
		if !phoneRE.MatchString(t.From) {
			v.at(append(path, "from"), "twilio from must be a number in international form, like +447700900000")
		}
		t.AccountSID = v.secret(usedBy("notifier"), path, "account_sid", t.AccountSIDEnv, t.AccountSIDFile, true)
		t.AuthToken = v.secret(usedBy("notifier"), path, "auth_token", t.AuthTokenEnv, t.AuthTokenFile, true)
		v.apiURL(append(path, "api_url"), t.APIURL)
	}
	if x := pr.X; x != nil {
		path := p("providers", "x")
		x.ConsumerKey = v.secret(usedBy("escalator"), path, "consumer_key", x.ConsumerKeyEnv, x.ConsumerKeyFile, true)
		x.ConsumerSecret = v.secret(usedBy("escalator"), path, "consumer_secret", x.ConsumerSecretEnv, x.ConsumerSecretFile, true)
		x.Token = v.secret(usedBy("escalator"), path, "token", x.TokenEnv, x.TokenFile, true)
		x.TokenSecret = v.secret(usedBy("escalator"), path, "token_secret", x.TokenSecretEnv, x.TokenSecretFile, true)
		v.apiURL(append(path, "api_url"), x.APIURL)
	}
	if f := pr.Facebook; f != nil {
		path := p("providers", "facebook")
		if f.PageID == "" {
			v.at(path, "facebook needs a page_id")
		}
		f.Token = v.secret(usedBy("escalator"), path, "token", f.TokenEnv, f.TokenFile, true)
		v.apiURL(append(path, "api_url"), f.APIURL)
	}
}

func (c *Config) hasEmailStaff() bool {
	for _, s := range c.Staff {
		if s.Email != "" {
			return true
		}
	}
	return false
}

// smtp checks a mail server's settings, at path: providers.smtp, or the
// off-site status page's own; users are the services that send through it.
func (v *validator) smtp(users []string, path []any, s *SMTP) {
	if s.Host == "" {
		v.at(path, "smtp needs a host")
	} else if strings.ContainsAny(s.Host, ":/ ") && net.ParseIP(s.Host) == nil {
		v.at(append(slices.Clone(path), "host"), "host %q must be a name or an address; the port goes under port", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.at(append(slices.Clone(path), "port"), "port %d is not a TCP port", s.Port)
	}
	if s.From == "" {
		v.at(path, "smtp needs a from address")
	} else {
		v.email(append(slices.Clone(path), "from"), s.From)
	}
	switch s.TLS {
	case "opportunistic", "starttls", "implicit", "none":
	default:
		v.at(append(slices.Clone(path), "tls"), "tls %q must be opportunistic, starttls, implicit or none", s.TLS)
	}
	if s.Username != "" && s.TLS == "none" && !apiurl.Loopback(s.Host) {
		v.at(append(slices.Clone(path), "tls"), "tls: none with a username would send the password in clear text; use starttls or implicit")
	}
	if s.Username != "" {
		s.Password = v.secret(users, path, "password", s.PasswordEnv, s.PasswordFile, true)
	} else if s.PasswordEnv != "" || s.PasswordFile != "" {
		v.at(path, "a password without a username is never used")
	}
	if s.CAFile != "" {
		s.CAFile = v.resolve(s.CAFile)
		if b, err := os.ReadFile(s.CAFile); err != nil {
			v.at(append(slices.Clone(path), "ca_file"), "ca_file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.at(append(slices.Clone(path), "ca_file"), "ca_file %s holds no PEM certificate", s.CAFile)
		}
	}
}
