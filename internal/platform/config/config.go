// Package config reads Tocsin's one YAML file: the fleet (locations, boxes of
// redundant servers and their checks), the people to tell, the escalation
// timeouts and the providers. Decoding is strict, defaults are set in one
// place, and every problem is reported at once as "file:line: problem".
// Secrets never sit in the file: it names an environment variable or a file.
package config

import (
	"net/netip"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Config is a loaded, defaulted and validated configuration.
type Config struct {
	Site        Site                  `yaml:"site"`
	Checks      Checks                `yaml:"checks"`
	Locations   []string              `yaml:"locations"`
	Roles       map[string]Role       `yaml:"roles"`
	Datacentres map[string]Datacentre `yaml:"datacentres"`
	Boxes       []Box                 `yaml:"boxes"`
	Staff       []Staff               `yaml:"staff"`
	OnCall      OnCall                `yaml:"oncall"`
	Notify      Notify                `yaml:"notify"`
	Incidents   Incidents             `yaml:"incidents"`
	Escalation  Escalation            `yaml:"escalation"`
	Maintenance []Maintenance         `yaml:"maintenance"`
	Providers   Providers             `yaml:"providers"`
	Statuspage  Statuspage            `yaml:"statuspage"`
	Bus         Bus                   `yaml:"bus"`
	Domains     Domains               `yaml:"domains"`
	Push        PushService           `yaml:"push"`
	Watchdog    *Watchdog             `yaml:"watchdog"`
	Selfwatch   Selfwatch             `yaml:"selfwatch"`

	// File is the path the configuration was read from.
	File string `yaml:"-"`

	index map[string][2]int // server id → box, server: Target is asked for every result
	raw   []byte            // the file, for the lines of Warnings
}

// Site is the hosting provider the alarm works for.
type Site struct {
	Name      string `yaml:"name"`
	StatusURL string `yaml:"status_url"` // the public status page, linked from every public message
}

// Checks are the defaults for every server's checks.
type Checks struct {
	Interval Duration `yaml:"interval"` // how often each server is checked
	Timeout  Duration `yaml:"timeout"`  // how long one check may take
	// HangAfter is how long a check may wait for its answer before other
	// locations are asked as well, so that a server that hangs is
	// confirmed about when the check times out, not a timeout later. A
	// slow server that answers within the timeout is still no outage.
	// Unset: a third of each server's timeout, at least 1s.
	HangAfter    Duration `yaml:"hang_after"`
	Verify       Verify   `yaml:"verify"`
	RecoverAfter int      `yaml:"recover_after"` // successes in a row before a down server is up again
	Flapping     Flapping `yaml:"flapping"`
	// CAFile is a CA the TLS checks trust besides the system's: a fleet
	// whose certificates a private CA signed.
	CAFile string `yaml:"ca_file"`
}

// Flapping says when a server changes state too often to page for each
// change: more than Changes changes between up and down within Window. Its
// incident then stays open, and nobody is paged again, until it has been up
// for Settle.
type Flapping struct {
	Changes *int     `yaml:"changes"` // 0 turns the detection off; unset, the default
	Window  Duration `yaml:"window"`
	Settle  Duration `yaml:"settle"`
}

// Limit is the number of changes allowed within the window; 0: no limit.
func (f Flapping) Limit() int {
	if f.Changes == nil {
		return 0
	}
	return *f.Changes
}

// Verify says how a failure is confirmed before anyone is told.
type Verify struct {
	Locations int `yaml:"locations"` // other locations asked to check again
	Quorum    int `yaml:"quorum"`    // failures among them that confirm the server down
}

// Role is what a box does, shown on the status page in its colour.
type Role struct {
	Label  string `yaml:"label"`
	Colour string `yaml:"colour"`
}

// Datacentre is where boxes live and whom to ask for help.
type Datacentre struct {
	Name       string      `yaml:"name"`
	Email      string      `yaml:"email"`
	Escalation *Escalation `yaml:"escalation"` // overrides escalation for its boxes
}

// Box is a group of redundant servers: the service is available while one
// of them is.
type Box struct {
	ID         string   `yaml:"id"`
	Name       string   `yaml:"name"`
	Role       string   `yaml:"role"`
	Datacentre string   `yaml:"datacentre"`
	Interval   Duration `yaml:"interval"` // overrides checks.interval for the box
	Timeout    Duration `yaml:"timeout"`
	Servers    []Server `yaml:"servers"`
	// Escalation overrides the datacentre's and the default for this box.
	Escalation *Escalation `yaml:"escalation"`
	// Failover takes its servers out of their load balancer when they are
	// confirmed down; nil leaves the load balancer alone.
	Failover *Failover `yaml:"failover"`
}

// Server is one machine and how to check it.
type Server struct {
	ID        string   `yaml:"id"`
	Check     string   `yaml:"check"` // a URL whose scheme picks the check: https://, smtp://, dns://, …
	InService *bool    `yaml:"in_service"`
	Interval  Duration `yaml:"interval"`
	Timeout   Duration `yaml:"timeout"`

	ExpectStatus int    `yaml:"expect_status"`  // http(s): the status wanted; default any below 400
	Keyword      string `yaml:"keyword"`        // http(s): text the page must contain
	CertWarnDays int    `yaml:"cert_warn_days"` // TLS checks: fail this many days before the certificate expires
	StartTLS     bool   `yaml:"starttls"`       // smtp: upgrade with STARTTLS and verify the certificate
	// PublicName is how the status page names the server; without it the
	// page says "<box name> 2", for a server's id may be an internal name.
	PublicName string `yaml:"public_name"`
	Login      *Login `yaml:"login"` // ftp: log in, not just read the banner
	// Push, set, makes the server one that reports in: see Push.
	Push *Push `yaml:"push"`
}

// Login is a username and a password by reference, for checks that log in.
type Login struct {
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`

	Password Secret `yaml:"-"`
}

// CheckOptions are the options of the server's check as a probe task
// carries them: never the password. Nil when the check has none.
func (s *Server) CheckOptions() *events.CheckOptions {
	o := events.CheckOptions{ExpectStatus: s.ExpectStatus, Keyword: s.Keyword, CertWarnDays: s.CertWarnDays, StartTLS: s.StartTLS}
	if s.Login != nil {
		o.Username = s.Login.Username
	}
	if o == (events.CheckOptions{}) {
		return nil
	}
	return &o
}

// Serving reports whether the server is in service: one being prepared is
// shown but never checked or paged for.
func (s *Server) Serving() bool { return s.InService == nil || *s.InService }

// Incidents says how confirmed failures become incidents.
type Incidents struct {
	// GroupWindow: a server of a datacentre confirmed down within this long
	// of the last one joins that incident, so that a datacentre losing power
	// opens one incident rather than hundreds. A server whose box is already
	// in an open incident always joins it. Default 2m.
	GroupWindow Duration `yaml:"group_window"`
}

// Escalation holds the timeouts after which an open incident goes further:
// the datacentre is emailed to open a ticket, then the public is told on
// X and Facebook and the hosting pages' banner goes up. 0 turns a step off.
// A datacentre or a box may set its own; an incident takes the soonest of
// its boxes'.
type Escalation struct {
	DatacentreAfter Duration `yaml:"datacentre_after"`
	SocialAfter     Duration `yaml:"social_after"`
	// AckCancels is the steps an acknowledgement cancels: "datacentre",
	// "social". By default it cancels none: staff on it may still need the
	// datacentre, and the public still needs telling.
	AckCancels []string `yaml:"ack_cancels"`
}

// The escalation steps.
const (
	StepDatacentre = "datacentre"
	StepSocial     = "social"
)

// EscalationFor is the escalation of an incident touching boxes: for each
// step, the soonest of what the boxes, their datacentres and the defaults
// say; 0 for a step that is off for all of them.
func (c *Config) EscalationFor(boxes []string) (datacentre, social time.Duration) {
	pick := func(get func(Escalation) Duration) time.Duration {
		best := time.Duration(0)
		for _, id := range boxes {
			d := get(c.Escalation)
			if b := c.Box(id); b != nil {
				if dc, ok := c.Datacentres[b.Datacentre]; ok && dc.Escalation != nil && get(*dc.Escalation) > 0 {
					d = get(*dc.Escalation)
				}
				if b.Escalation != nil && get(*b.Escalation) > 0 {
					d = get(*b.Escalation)
				}
			}
			if d > 0 && (best == 0 || d.D() < best) {
				best = d.D()
			}
		}
		if len(boxes) == 0 {
			best = get(c.Escalation).D()
		}
		return best
	}
	return pick(func(e Escalation) Duration { return e.DatacentreAfter }), pick(func(e Escalation) Duration { return e.SocialAfter })
}

// Maintenance is a planned window during which servers are expected down.
type Maintenance struct {
	Servers []string  `yaml:"servers"`
	From    time.Time `yaml:"from"`
	Until   time.Time `yaml:"until"`
	Reason  string    `yaml:"reason"`
}

// Providers are the outside services messages go through.
type Providers struct {
	SMTP     *SMTP     `yaml:"smtp"`
	Twilio   *Twilio   `yaml:"twilio"`
	X        *X        `yaml:"x"`
	Facebook *Facebook `yaml:"facebook"`
}

// SMTP is the mail server email goes out through.
type SMTP struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	From         string `yaml:"from"`
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// TLS is opportunistic (STARTTLS when offered, the default), starttls
	// (required), implicit (TLS from the first byte, port 465) or none.
	TLS    string `yaml:"tls"`
	CAFile string `yaml:"ca_file"` // extra CA to trust, for a server with a private certificate

	Password Secret `yaml:"-"`
}

// Twilio sends SMS.
type Twilio struct {
	From              string `yaml:"from"`
	AccountSIDEnv     string `yaml:"account_sid_env"`
	AccountSIDFile    string `yaml:"account_sid_file"`
	AuthTokenEnv      string `yaml:"auth_token_env"`
	AuthTokenFile     string `yaml:"auth_token_file"`
	APIURL            string `yaml:"api_url"`
	AccountSID        Secret `yaml:"-"`
	AuthToken         Secret `yaml:"-"`
	StatusCallbackURL string `yaml:"status_callback_url"`
}

// X posts to Twitter/X with OAuth 1.0a user context.
type X struct {
	ConsumerKeyEnv     string `yaml:"consumer_key_env"`
	ConsumerKeyFile    string `yaml:"consumer_key_file"`
	ConsumerSecretEnv  string `yaml:"consumer_secret_env"`
	ConsumerSecretFile string `yaml:"consumer_secret_file"`
	TokenEnv           string `yaml:"token_env"`
	TokenFile          string `yaml:"token_file"`
	TokenSecretEnv     string `yaml:"token_secret_env"`
	TokenSecretFile    string `yaml:"token_secret_file"`
	APIURL             string `yaml:"api_url"`

	ConsumerKey, ConsumerSecret, Token, TokenSecret Secret `yaml:"-"`
}

// Facebook posts to a page feed.
type Facebook struct {
	PageID    string `yaml:"page_id"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`
	APIURL    string `yaml:"api_url"`

	Token Secret `yaml:"-"`
}

// Statuspage is the public page.
type Statuspage struct {
	Listen string `yaml:"listen"`
	// AdminTokenEnv/File name the bearer token of the admin API, through
	// which staff post incident updates; without it there is no admin API.
	AdminTokenEnv  string `yaml:"admin_token_env"`
	AdminTokenFile string `yaml:"admin_token_file"`
	AdminToken     Secret `yaml:"-"`
	// History is how far back the page shows incidents and uptime.
	History Duration `yaml:"history"`
	// TrustedProxies are the reverse proxies in front of the page, as
	// addresses or CIDR prefixes: a request from one of them is taken to
	// come from the address its X-Forwarded-For names, any other from its
	// TCP peer, whatever it says.
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Proxies        []netip.Prefix `yaml:"-"` // TrustedProxies, parsed
	// MaxStreams bounds the live-update streams open at once, in all and
	// from one client (an IPv6 client by its /64): each holds a
	// connection and a file descriptor for as long as it likes.
	MaxStreams          int `yaml:"max_streams"`
	MaxStreamsPerClient int `yaml:"max_streams_per_client"`
	// IDKeyEnv/File name the key public incident ids are made with, so
	// that the page, an off-site page and an export give an incident the
	// same id. Without it the page keeps a key of its own beside its
	// saved state.
	IDKeyEnv  string `yaml:"id_key_env"`
	IDKeyFile string `yaml:"id_key_file"`
	IDKey     Secret `yaml:"-"`
	// StaleAlert, when set, emails staff when the page has heard nothing
	// from the main site for a while.
	StaleAlert *StaleAlert `yaml:"stale_alert"`
}

// Target is one server to check, with the settings that apply to it.
type Target struct {
	Box      *Box
	Server   *Server
	Interval time.Duration
	Timeout  time.Duration
	// HangAfter is when a check still unanswered asks other locations
	// too; 0: never before it times out.
	HangAfter time.Duration
}

// Targets is every server in service, in the order of the file.
func (c *Config) Targets() []Target {
	var ts []Target
	for i := range c.Boxes {
		b := &c.Boxes[i]
		for j := range b.Servers {
			s := &b.Servers[j]
			if s.Serving() {
				ts = append(ts, c.target(b, s))
			}
		}
	}
	return ts
}

// Target finds a server by id, in service or not.
func (c *Config) Target(server string) (Target, bool) {
	at, ok := c.index[server]
	if !ok {
		return Target{}, false
	}
	b := &c.Boxes[at[0]]
	return c.target(b, &b.Servers[at[1]]), true
}

func (c *Config) buildIndex() {
	c.index = map[string][2]int{}
	for i, b := range c.Boxes {
		for j, s := range b.Servers {
			if _, dup := c.index[s.ID]; !dup {
				c.index[s.ID] = [2]int{i, j}
			}
		}
	}
}

func (c *Config) target(b *Box, s *Server) Target {
	t := Target{
		Box:      b,
		Server:   s,
		Interval: first(s.Interval, b.Interval, c.Checks.Interval).D(),
		Timeout:  first(s.Timeout, b.Timeout, c.Checks.Timeout).D(),
	}
	t.HangAfter = hangAfter(c.Checks.HangAfter.D(), t.Timeout)
	return t
}

// hangAfter is when a check with timeout asks other locations too: the
// configured time, or a third of the timeout but at least a second; never
// when that leaves less than half a second before the timeout.
func hangAfter(configured, timeout time.Duration) time.Duration {
	d := configured
	if d <= 0 {
		d = max(timeout/3, time.Second).Round(100 * time.Millisecond)
	}
	if timeout-d < 500*time.Millisecond {
		return 0
	}
	return d
}

func first(ds ...Duration) Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

// BoxesTakenDown is the boxes a maintenance window over servers takes out
// of service as a whole: every server of theirs in service is in it.
// Customers are told of such a window; one that leaves every box available
// stays internal.
func (c *Config) BoxesTakenDown(servers []string) []string {
	var out []string
	for _, b := range c.Boxes {
		serving, covered := 0, 0
		for _, s := range b.Servers {
			if s.Serving() {
				serving++
				if slices.Contains(servers, s.ID) {
					covered++
				}
			}
		}
		if serving > 0 && covered == serving {
			out = append(out, b.ID)
		}
	}
	return out
}

// Box finds a box by id; nil if there is none.
func (c *Config) Box(id string) *Box {
	for i := range c.Boxes {
		if c.Boxes[i].ID == id {
			return &c.Boxes[i]
		}
	}
	return nil
}

// RoleLabel is the box's role as people read it.
func (c *Config) RoleLabel(b *Box) string {
	if r, ok := c.Roles[b.Role]; ok && r.Label != "" {
		return r.Label
	}
	return b.Role
}
