package policy

import (
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// FromConfig is the policies of notify.policies, by severity.
func FromConfig(cfg *config.Config) Policies {
	ps := Policies{}
	for _, sev := range []events.Severity{events.SeverityDegraded, events.SeverityOutage} {
		var pol Policy
		for _, r := range cfg.Notify.Policies.For(sev) {
			pol = append(pol, Rung{After: r.After.D(), Who: r.Who, By: r.By})
		}
		if len(pol) > 0 {
			ps[sev] = pol
		}
	}
	return ps
}

// Staff is the config's rotation, secondary, overrides and staff as a
// Resolver.
func Staff(cfg *config.Config) Resolver {
	return ResolverFunc(func(who string, at time.Time) []Person {
		var out []Person
		for _, s := range cfg.Reach(who, at) {
			out = append(out, Person{Name: s.Name, Phone: s.Phone != "", Email: s.Email != ""})
		}
		return out
	})
}
