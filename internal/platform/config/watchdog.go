package config

import (
	"net/url"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Watchdog is the dead man's switch outside Tocsin that the pipeline proves
// itself to: every Every, while a canary has gone through every stage,
// Tocsin calls URL (healthchecks.io, Cronitor, Better Stack and the like
// take any GET or POST there as "alive"), and <URL>/fail with the reason
// while a stage is stuck. When the box dies, the calls stop, and the
// switch raises the alarm by itself.
type Watchdog struct {
	// URL is where to ping. It usually holds a token that lets anyone
	// ping: give it by url_env or url_file rather than in the file.
	URL     string   `yaml:"url"`
	URLEnv  string   `yaml:"url_env"`
	URLFile string   `yaml:"url_file"`
	Every   Duration `yaml:"every"`   // how often the canary runs and the switch is called
	Timeout Duration `yaml:"timeout"` // for each call to the switch

	// Ping is the URL, from whichever of url, url_env or url_file gave it.
	Ping Secret `yaml:"-"`
}

// The watchdog's defaults and bounds: a canary at most every second (for
// tests; a minute is usual), at least once an hour, and a call to the
// switch that always ends before the next.
const (
	DefaultWatchdogEvery   = time.Minute
	DefaultWatchdogTimeout = 10 * time.Second
	minWatchdogEvery       = time.Second
	maxWatchdogEvery       = time.Hour
	maxWatchdogTimeout     = time.Minute
	maxWatchdogURL         = 2048
)

func (c *Config) watchdogDefaults() {
	w := c.Watchdog
	if w == nil {
		return
	}
	if w.Every == 0 {
		w.Every = Duration(DefaultWatchdogEvery)
	}
	if w.Timeout == 0 {
		w.Timeout = Duration(min(DefaultWatchdogTimeout, w.Every.D()/2))
	}
}

func (v *validator) watchdog(c *Config) {
	for i, b := range c.Boxes {
		for j, s := range b.Servers {
			if s.ID == events.CanaryServer {
				v.at(p("boxes", i, "servers", j, "id"), "server id %q is reserved for the watchdog's canary", s.ID)
			}
		}
	}
	w := c.Watchdog
	if w == nil {
		return
	}
	path := p("watchdog")
	raw := w.URL
	switch n := btoi(w.URL != "") + btoi(w.URLEnv != "") + btoi(w.URLFile != ""); {
	case n == 0:
		v.at(path, "watchdog needs the url of the dead man's switch: url_env, url_file or url")
	case n > 1:
		v.at(path, "give one of url, url_env and url_file")
	case w.URL != "":
		w.Ping = NewSecret(w.URL)
	default:
		w.Ping = v.secret(usedBy("watchdog"), path, "url", w.URLEnv, w.URLFile, true)
		raw = w.Ping.Reveal()
	}
	if raw != "" {
		at := append(p("watchdog"), "url")
		if w.URL == "" {
			at = path // the value is not in the file: never repeat it
		}
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.at(at, "the watchdog url must be an http or https URL")
		} else if u.User != nil {
			v.at(at, "the watchdog url must not hold a username or password")
		} else if u.RawQuery != "" || u.Fragment != "" {
			v.at(at, "the watchdog url must not hold a query or fragment: <url>/fail is called when something is wrong")
		} else if len(raw) > maxWatchdogURL {
			v.at(at, "the watchdog url is longer than %d bytes", maxWatchdogURL)
		}
	}
	switch e := w.Every.D(); {
	case e < minWatchdogEvery:
		v.at(p("watchdog", "every"), "every %s is too short: at least %s (a minute is usual)", w.Every, Duration(minWatchdogEvery))
	case e > maxWatchdogEvery:
		v.at(p("watchdog", "every"), "every %s is too long for a dead man's switch: at most %s", w.Every, Duration(maxWatchdogEvery))
	}
	switch t := w.Timeout.D(); {
	case t <= 0:
		v.at(p("watchdog", "timeout"), "timeout must be positive")
	case t > maxWatchdogTimeout:
		v.at(p("watchdog", "timeout"), "timeout %s is too long: at most %s", w.Timeout, Duration(maxWatchdogTimeout))
	case t >= w.Every.D() && w.Every.D() >= minWatchdogEvery:
		v.at(p("watchdog", "timeout"), "timeout %s must be shorter than every (%s): a call to the switch ends before the next", w.Timeout, w.Every)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
