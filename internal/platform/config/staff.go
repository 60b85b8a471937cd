package config

import (
	"net/netip"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Staff is a person to tell about outages.
type Staff struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	Phone string `yaml:"phone"`
	// Boxes and Roles route incidents: a person who names some hears of
	// incidents touching those boxes, or boxes of those roles, only. The
	// person on call hears of every incident.
	Boxes []string `yaml:"boxes"`
	Roles []string `yaml:"roles"`
}

// OnCall is a weekly rotation: the first person named is on call for the
// week from Handover, the next for the week after, and so on round;
// overrides stand in for whoever is on call during their window.
type OnCall struct {
	Rotation  []string   `yaml:"rotation"` // staff names
	Handover  time.Time  `yaml:"handover"` // a moment when the first of the rotation took over
	Overrides []Override `yaml:"overrides"`
	Secondary Secondary  `yaml:"secondary"` // who escalation policies call the secondary
}

// Override puts someone on call for a while instead of the rotation.
type Override struct {
	Name  string    `yaml:"name"`
	From  time.Time `yaml:"from"`
	Until time.Time `yaml:"until"`
}

// Channels are the names of the channels staff can be told by, as the
// notify section spells them.
var Channels = []string{"sms", "email"}

// Notify says how staff are told.
type Notify struct {
	// Channels for the person on call and for everyone else routed to an
	// incident: "sms", "email". Without a rotation everyone is on call.
	OnCallChannels []string `yaml:"oncall"`
	OthersChannels []string `yaml:"others"`
	// GroupWait holds an incident's first message this long to gather
	// what fails with it (0: at once). GroupWindow gathers the updates
	// after the first message into one; UpdateEvery spaces the updates
	// after that.
	GroupWait   Duration `yaml:"group_wait"`
	GroupWindow Duration `yaml:"group_window"`
	UpdateEvery Duration `yaml:"update_every"`
	// RepeatEvery repeats an unacknowledged incident to the person on call
	// (0: never).
	RepeatEvery Duration `yaml:"repeat_every"`
	// FallbackAfter: a channel failing this long, or refused for good, has
	// the message carried by another channel, which says so.
	FallbackAfter Duration `yaml:"fallback_after"`
	// Fallback is the order channels stand in for each other: a message
	// that fails on one goes by the next in the list that reaches the
	// person, wrapping round to the start. A channel not listed has no
	// fallback. Default: [sms, email], each the other's.
	Fallback []string `yaml:"fallback"`
	// Severity routes incidents by how bad they are: "warning",
	// "degraded", "outage". A severity left out takes OnCallChannels and
	// OthersChannels, except warnings, which go by email, once a day.
	Severity map[string]SeverityRoute `yaml:"severity"`
	// Policies escalate an unacknowledged incident, rung by rung.
	Policies Policies `yaml:"policies"`
	// Listen is where the notifier serves acknowledgement links and
	// Twilio's webhooks; PublicURL is how the internet reaches it.
	Listen      string `yaml:"listen"`
	PublicURL   string `yaml:"public_url"`
	LinkKeyEnv  string `yaml:"link_key_env"`
	LinkKeyFile string `yaml:"link_key_file"`
	LinkKey     Secret `yaml:"-"` // signs acknowledgement links
	// TrustedProxies are the reverse proxies in front of Listen, as for
	// the status page: limits count by the client behind them.
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Proxies        []netip.Prefix `yaml:"-"`
}

// SeverityRoute is how staff hear of incidents of one severity.
type SeverityRoute struct {
	OnCall []string `yaml:"oncall"`
	Others []string `yaml:"others"`
	// RepeatEvery repeats the incident to the person on call while it is
	// not acknowledged; for warnings, to everyone routed while it is not
	// fixed. 0: notify.repeat_every (a day for warnings).
	RepeatEvery Duration `yaml:"repeat_every"`
}

// Route is how staff hear of incidents of severity sev, with the defaults
// filled in.
func (n *Notify) Route(sev events.Severity) SeverityRoute {
	r := n.Severity[string(sev)]
	if r.OnCall == nil {
		r.OnCall = n.OnCallChannels
		if sev == events.SeverityWarning {
			r.OnCall = []string{"email"}
		}
	}
	if r.Others == nil {
		r.Others = n.OthersChannels
		if sev == events.SeverityWarning {
			r.Others = []string{"email"}
		}
	}
	if r.RepeatEvery == 0 {
		r.RepeatEvery = n.RepeatEvery
		if sev == events.SeverityWarning {
			r.RepeatEvery = Duration(DefaultWarningRepeat)
		}
	}
	return r
}

// OnCallAt is the name of the person on call at t, "" without a rotation.
func (c *Config) OnCallAt(t time.Time) string {
	for _, o := range c.OnCall.Overrides {
		if !t.Before(o.From) && t.Before(o.Until) {
			return o.Name
		}
	}
	r := c.OnCall.Rotation
	if len(r) == 0 {
		return ""
	}
	const week = 7 * 24 * time.Hour
	d := t.Sub(c.OnCall.Handover)
	weeks := int64(d / week)
	if d < 0 && d%week != 0 {
		weeks-- // round down before the handover too
	}
	n := int64(len(r))
	return r[((weeks%n)+n)%n]
}

// StaffNamed finds a staff member by name.
func (c *Config) StaffNamed(name string) (Staff, bool) {
	for _, s := range c.Staff {
		if s.Name == name {
			return s, true
		}
	}
	return Staff{}, false
}
