package config

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Selfwatch says how the alarm watches itself: how often it looks, how
// long a trouble must last before staff are told and how long it must be
// gone before they are told it cleared, and the thresholds. Self alerts
// go to staff only, never to the public.
type Selfwatch struct {
	// Every is how often the watcher looks.
	Every Duration `yaml:"every"`
	// RaiseAfter is how many looks in a row must find a trouble before it
	// alerts; ClearAfter how many must find it gone before it clears. The
	// two keep an alert from flapping.
	RaiseAfter int `yaml:"raise_after"`
	ClearAfter int `yaml:"clear_after"`
	// MaxLag is how many messages a consumer may have pending before it
	// is behind.
	MaxLag uint64 `yaml:"max_lag"`
	// DeadLettersQuiet is how long no message may have been set aside
	// before an alert about dead letters clears.
	DeadLettersQuiet Duration `yaml:"dead_letters_quiet"`
	// ProviderAfter is how long a provider (SMS, email, voice) must have
	// refused every message before staff are told by another channel.
	ProviderAfter Duration `yaml:"provider_after"`
}

// StaleAlert is the email the status page sends staff, by a mail server
// of its own, when it has heard nothing from the main site for After:
// off-site, on another network, it is the one part left to tell them that
// the whole alarm has gone quiet.
type StaleAlert struct {
	After Duration `yaml:"after"`
	To    []string `yaml:"to"`
	// SMTP is the mail server it sends by; providers.smtp when unset.
	SMTP *SMTP `yaml:"smtp"`
}

// The defaults and bounds of self-watching.
const (
	DefaultSelfEvery         = 30 * time.Second
	DefaultSelfRaiseAfter    = 2
	DefaultSelfClearAfter    = 2
	DefaultSelfMaxLag        = 1000
	DefaultDeadLettersQuiet  = time.Hour
	DefaultProviderAfter     = 10 * time.Minute
	DefaultStaleAlertAfter   = 10 * time.Minute
	minSelfEvery             = 5 * time.Second
	maxSelfEvery             = 10 * time.Minute
	maxSelfRounds            = 100
	minStaleAlertAfter       = time.Minute
	maxStaleAlertRecipients  = 20
	maxSelfwatchProviderWait = 24 * time.Hour
)

func (c *Config) selfwatchDefaults() {
	s := &c.Selfwatch
	if s.Every == 0 {
		s.Every = Duration(DefaultSelfEvery)
	}
	if s.RaiseAfter == 0 {
		s.RaiseAfter = DefaultSelfRaiseAfter
	}
	if s.ClearAfter == 0 {
		s.ClearAfter = DefaultSelfClearAfter
	}
	if s.MaxLag == 0 {
		s.MaxLag = DefaultSelfMaxLag
	}
	if s.DeadLettersQuiet == 0 {
		s.DeadLettersQuiet = Duration(DefaultDeadLettersQuiet)
	}
	if s.ProviderAfter == 0 {
		s.ProviderAfter = Duration(DefaultProviderAfter)
	}
	if a := c.Statuspage.StaleAlert; a != nil {
		if a.After == 0 {
			a.After = Duration(DefaultStaleAlertAfter)
		}
		a.SMTP.setDefaults()
	}
}

func (v *validator) selfwatch(c *Config) {
	s := c.Selfwatch
	if e := s.Every.D(); e < minSelfEvery || e > maxSelfEvery {
		v.at(p("selfwatch", "every"), "every %s must be between %s and %s", s.Every, Duration(minSelfEvery), Duration(maxSelfEvery))
	}
	if s.RaiseAfter < 1 || s.RaiseAfter > maxSelfRounds {
		v.at(p("selfwatch", "raise_after"), "raise_after %d must be between 1 and %d looks", s.RaiseAfter, maxSelfRounds)
	}
	if s.ClearAfter < 1 || s.ClearAfter > maxSelfRounds {
		v.at(p("selfwatch", "clear_after"), "clear_after %d must be between 1 and %d looks", s.ClearAfter, maxSelfRounds)
	}
	if s.DeadLettersQuiet < 0 {
		v.at(p("selfwatch", "dead_letters_quiet"), "dead_letters_quiet must not be negative")
	}
	if a := s.ProviderAfter.D(); a < 0 || a > maxSelfwatchProviderWait {
		v.at(p("selfwatch", "provider_after"), "provider_after %s must be between 0s and %s", s.ProviderAfter, Duration(maxSelfwatchProviderWait))
	}
	a := c.Statuspage.StaleAlert
	if a == nil {
		return
	}
	path := p("statuspage", "stale_alert")
	if a.After.D() < minStaleAlertAfter {
		v.at(append(path, "after"), "after %s is shorter than %s: a page that reconnects in a minute is not stale", a.After, Duration(minStaleAlertAfter))
	}
	switch {
	case len(a.To) == 0:
		v.at(path, "stale_alert needs to: the staff addresses to email")
	case len(a.To) > maxStaleAlertRecipients:
		v.at(p("statuspage", "stale_alert", "to"), "to has %d addresses: at most %d", len(a.To), maxStaleAlertRecipients)
	}
	for i, to := range a.To {
		v.email(p("statuspage", "stale_alert", "to", i), to)
	}
	if a.SMTP != nil {
		v.smtp(usedBy("statuspage"), p("statuspage", "stale_alert", "smtp"), a.SMTP)
	} else if c.Providers.SMTP == nil {
		v.at(path, "stale_alert needs an smtp of its own, or providers.smtp")
	}
}

// Digest names the config's content in a few characters: instances that
// answer discovery with different digests run different configs. It is
// made of the file as read, whose secrets are only references.
func (c *Config) Digest() string {
	if c == nil || len(c.raw) == 0 {
		return ""
	}
	sum := sha256.Sum256(c.raw)
	return hex.EncodeToString(sum[:8])
}

// StaleSMTP is the mail server the status page's stale alert goes by.
func (a *StaleAlert) StaleSMTP(c *Config) *SMTP {
	if a.SMTP != nil {
		return a.SMTP
	}
	return c.Providers.SMTP
}
