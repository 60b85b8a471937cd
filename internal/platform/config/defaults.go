package config

import (
	"time"

	"github.com/tocsin-alarm/tocsin/internal/adapter/rdap"
)

// The defaults, in one place.
const (
	DefaultInterval     = 5 * time.Minute
	DefaultTimeout      = 10 * time.Second
	DefaultRecoverAfter = 2
	DefaultVerifyQuorum = 2
	DefaultSMTPPort     = 587
	DefaultSMTPSPort    = 465
	DefaultListen       = "127.0.0.1:8080"
	// DefaultFlapChanges: a server down, back, and down again within the
	// window is flapping at its second outage, so that it pages once.
	DefaultFlapChanges  = 2
	DefaultFlapWindow   = 30 * time.Minute
	DefaultFlapSettle   = 10 * time.Minute
	DefaultGroupWindow  = 2 * time.Minute
	DefaultNotifyWindow = time.Minute
	DefaultUpdateEvery  = 10 * time.Minute
	DefaultRepeatEvery  = 30 * time.Minute
	// DefaultWarningRepeat: a warning is emailed once a day until fixed.
	DefaultWarningRepeat = 24 * time.Hour
	DefaultFallback      = 2 * time.Minute
	DefaultNotifyListen  = "127.0.0.1:8081"
	// DefaultMaxStreams and DefaultMaxStreamsPerClient bound the status
	// page's live-update streams: far below the file descriptors a process
	// has, and enough for an office behind one address to keep its tabs
	// open.
	DefaultMaxStreams          = 1000
	DefaultMaxStreamsPerClient = 16
	// DefaultMaxStore is the disk the bus's streams and buckets share:
	// years of incidents for a fleet of thousands, and below the 2GB a
	// small NATS node gives JetStream. DefaultMaxMemory holds the probe
	// tasks waiting.
	DefaultMaxStore  = 1 << 30
	DefaultMaxMemory = 128 << 20
	// DefaultDomainWarnDays gives a month to renew a domain, and
	// DefaultDomainsEvery looks each up twice a day: a registry's date
	// changes once a year, and its RDAP server limits how often it is
	// asked.
	DefaultDomainWarnDays = 30
	DefaultDomainsEvery   = 12 * time.Hour
	DefaultRDAPBootstrap  = rdap.DefaultBootstrapURL
)

func (c *Config) setDefaults() {
	if c.Bus.MaxStore == 0 {
		c.Bus.MaxStore = DefaultMaxStore
	}
	if c.Bus.MaxMemory == 0 {
		c.Bus.MaxMemory = DefaultMaxMemory
	}
	if c.Checks.Interval == 0 {
		c.Checks.Interval = Duration(DefaultInterval)
	}
	if c.Checks.Timeout == 0 {
		c.Checks.Timeout = Duration(DefaultTimeout)
	}
	if c.Checks.RecoverAfter == 0 {
		c.Checks.RecoverAfter = DefaultRecoverAfter
	}
	if fl := &c.Checks.Flapping; fl.Changes == nil {
		n := DefaultFlapChanges
		fl.Changes = &n
	}
	if fl := &c.Checks.Flapping; fl.Window == 0 {
		fl.Window = Duration(DefaultFlapWindow)
	}
	if fl := &c.Checks.Flapping; fl.Settle == 0 {
		fl.Settle = Duration(DefaultFlapSettle)
	}
	if c.Incidents.GroupWindow == 0 {
		c.Incidents.GroupWindow = Duration(DefaultGroupWindow)
	}
	if c.Checks.Verify == (Verify{}) {
		c.Checks.Verify = Verify{Locations: DefaultVerifyQuorum, Quorum: DefaultVerifyQuorum}
	}
	c.Providers.SMTP.setDefaults()
	n := &c.Notify
	if n.OnCallChannels == nil {
		n.OnCallChannels = []string{"email"}
		if c.Providers.Twilio != nil {
			n.OnCallChannels = []string{"sms", "email"}
		}
	}
	if n.OthersChannels == nil {
		n.OthersChannels = []string{"email"}
	}
	if n.GroupWindow == 0 {
		n.GroupWindow = Duration(DefaultNotifyWindow)
	}
	if n.UpdateEvery == 0 {
		n.UpdateEvery = Duration(DefaultUpdateEvery)
	}
	if n.RepeatEvery == 0 {
		n.RepeatEvery = Duration(DefaultRepeatEvery)
	}
	if n.FallbackAfter == 0 {
		n.FallbackAfter = Duration(DefaultFallback)
	}
	if n.Fallback == nil {
		n.Fallback = []string{"sms", "email"}
	}
	if n.Listen == "" {
		n.Listen = DefaultNotifyListen
	}
	if c.Statuspage.Listen == "" {
		c.Statuspage.Listen = DefaultListen
	}
	if c.Statuspage.History == 0 {
		c.Statuspage.History = Duration(90 * 24 * time.Hour)
	}
	if c.Statuspage.MaxStreams == 0 {
		c.Statuspage.MaxStreams = DefaultMaxStreams
	}
	if c.Statuspage.MaxStreamsPerClient == 0 {
		c.Statuspage.MaxStreamsPerClient = min(DefaultMaxStreamsPerClient, c.Statuspage.MaxStreams)
	}
	if d := &c.Domains; d.WarnDays == 0 {
		d.WarnDays = DefaultDomainWarnDays
	}
	if d := &c.Domains; d.Every == 0 {
		d.Every = Duration(DefaultDomainsEvery)
	}
	if d := &c.Domains; d.RDAPBootstrap == "" {
		d.RDAPBootstrap = DefaultRDAPBootstrap
	}
	if c.Push.Listen == "" {
		c.Push.Listen = DefaultPushListen
	}
	c.failoverDefaults()
	c.policyDefaults()
	c.watchdogDefaults()
	c.selfwatchDefaults()
}

// setDefaults gives a mail server its TLS mode and port; nil stays nil.
func (s *SMTP) setDefaults() {
	if s == nil {
		return
	}
	if s.TLS == "" {
		s.TLS = "opportunistic"
	}
	if s.Port == 0 {
		s.Port = DefaultSMTPPort
		if s.TLS == "implicit" {
			s.Port = DefaultSMTPSPort
		}
	}
}
