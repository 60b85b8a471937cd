// Package platform is what every service is given to run, and the folder
// of the plumbing they share: the bus, the config, metrics, the admin
// endpoints, the bounds of HTTP servers, and the text that may go public.
package platform

import (
	"log/slog"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
)

// Deps are what every service takes from the process that runs it; what
// only one service needs (a listener, a provider's client) is one of its
// own options.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	// Now is the clock; nil, time.Now.
	Now func() time.Time
	// Metrics, when nil, are made on a registry of the service's own.
	Metrics *metrics.Metrics
}

// WithDefaults is d with a clock and metrics where it has none.
func (d Deps) WithDefaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return d
}
