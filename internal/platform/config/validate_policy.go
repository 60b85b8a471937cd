package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// policySeverities are the severities that escalate, in the file's words.
var policySeverities = []events.Severity{events.SeverityDegraded, events.SeverityOutage}

func (v *validator) policies(c *Config) {
	v.secondary(c)
	for _, sev := range policySeverities {
		rungs := c.Notify.Policies.For(sev)
		path := p("notify", "policies", string(sev))
		if len(rungs) == 0 {
			v.at(path, "the %s policy has no rungs: give at least one, or leave it out for the default", sev)
		}
		for i, r := range rungs {
			v.rung(c, p("notify", "policies", string(sev), i), r)
			switch {
			case r.After < 0:
				v.at(p("notify", "policies", string(sev), i, "after"), "after must not be negative")
			case i > 0 && r.After <= rungs[i-1].After:
				v.at(p("notify", "policies", string(sev), i, "after"), "after %s must be later than the rung before it (%s): rungs go in the order they fire", r.After, rungs[i-1].After)
			}
		}
	}
}

func (v *validator) rung(c *Config, path []any, r Rung) {
	at := func(parts ...any) []any { return append(slices.Clone(path), parts...) }
	if len(r.Who) == 0 {
		v.at(path, "a rung needs who: oncall, secondary, team or a staff member's name")
	}
	for j, w := range r.Who {
		switch {
		case slices.Index(r.Who, w) < j:
			v.at(at("who", j), "%q is listed twice", w)
		case w == WhoOnCall || w == WhoSecondary || w == WhoTeam:
		default:
			s, ok := c.StaffNamed(w)
			if !ok {
				v.at(at("who", j), "unknown who %q: use oncall, secondary, team or a staff member's name", w)
			} else if len(r.By) > 0 && !slices.ContainsFunc(r.By, s.Reaches) {
				v.at(at("who", j), "%s cannot be reached by %s: no %s", w, strings.Join(r.By, " or "), missing(s))
			}
		}
	}
	if len(r.By) == 0 {
		v.at(path, "a rung needs by: sms, voice or email")
	}
	for j, ch := range r.By {
		switch {
		case slices.Index(r.By, ch) < j:
			v.at(at("by", j), "channel %q is listed twice", ch)
		case !slices.Contains(PolicyChannels, ch):
			v.at(at("by", j), "unknown channel %q: use sms, voice or email", ch)
		case ch != "email" && c.Providers.Twilio == nil:
			v.at(at("by", j), "%s needs providers.twilio", ch)
		}
	}
}

func missing(s Staff) string {
	if s.Phone == "" {
		return "phone"
	}
	return "email address"
}

func (v *validator) secondary(c *Config) {
	s := c.OnCall.Secondary
	for i, name := range s.Rotation {
		if _, ok := c.StaffNamed(name); !ok {
			v.at(p("oncall", "secondary", "rotation", i), "no staff member named %q", name)
		}
	}
	if len(s.Rotation) > 0 && s.Handover.IsZero() && c.OnCall.Handover.IsZero() {
		v.at(p("oncall", "secondary"), "a secondary rotation needs a handover, its own or oncall.handover")
	}
	for i, ov := range s.Overrides {
		if _, ok := c.StaffNamed(ov.Name); !ok {
			v.at(p("oncall", "secondary", "overrides", i, "name"), "no staff member named %q", ov.Name)
		}
		if !ov.Until.After(ov.From) {
			v.at(p("oncall", "secondary", "overrides", i), "an override needs from and until, until after from")
		}
	}
}

// Warnings are what is legal in the file but would leave an outage untold
// for a while: a rung of an escalation policy that reaches nobody at some
// time in the week from now, for a gap in a rotation or someone on call
// without what the rung's channels need. Each is "file:line: warning: …".
func (c *Config) Warnings(now time.Time) []string {
	type gap struct {
		path     []any
		from, to time.Time
		rung     Rung
		sevs     []string
	}
	var gaps []*gap
	end := now.Add(week)
	points := c.rotationChanges(now, end)
	for _, sev := range policySeverities {
		rungs := c.Notify.Policies.For(sev)
		for i, r := range rungs {
			path := p("notify", "policies", string(sev), i)
			if c.Notify.Policies.defaulted[sev] {
				path = p("oncall")
			}
			var open *gap
			for k, t := range points {
				to := end
				if k+1 < len(points) {
					to = points[k+1]
				}
				if c.reaches(r, t) {
					open = nil
					continue
				}
				if open != nil {
					open.to = to
					continue
				}
				// The same gap in another policy, as the defaults have.
				j := slices.IndexFunc(gaps, func(g *gap) bool {
					return g.from.Equal(t) && slices.Equal(g.path, path) && slices.Equal(g.rung.Who, r.Who) && slices.Equal(g.rung.By, r.By) && g.rung.After == r.After
				})
				if j >= 0 {
					gaps[j].sevs = append(gaps[j].sevs, string(sev))
					open = &gap{} // extended in the other already
					continue
				}
				open = &gap{path: path, from: t, to: to, rung: r, sevs: []string{string(sev)}}
				gaps = append(gaps, open)
			}
		}
	}
	var root yaml.Node
	var doc *yaml.Node
	if err := yaml.Unmarshal(c.raw, &root); err == nil && len(root.Content) > 0 {
		doc = root.Content[0]
	}
	var ps Problems
	if w := c.wakingDegraded(); w != nil {
		pr := Problem{File: c.File, path: w, Msg: "warning: this rung of the degraded policy pages by sms or voice, " +
			"while notify.severity.degraded reaches the person on call by no SMS: the policy is followed as written"}
		if doc != nil {
			pr.Line = lineOf(doc, w)
		}
		ps = append(ps, pr)
	}
	for _, g := range gaps {
		pr := Problem{File: c.File, path: g.path, Msg: fmt.Sprintf(
			"warning: from %s to %s nobody is reached by the rung after %s of the %s (%s by %s): it would be skipped",
			g.from.UTC().Format(time.RFC3339), g.to.UTC().Format(time.RFC3339), g.rung.After, policyNames(g.sevs),
			strings.Join(g.rung.Who, ", "), strings.Join(g.rung.By, ", "))}
		if doc != nil {
			pr.Line = lineOf(doc, g.path)
		}
		ps = append(ps, pr)
	}
	if len(ps) == 0 {
		return nil
	}
	out := make([]string, len(ps))
	for i, pr := range ps {
		out[i] = pr.String()
	}
	return out
}

// wakingDegraded is the path of the first rung of a degraded policy the
// file wrote that pages by SMS or a call while the file routes degraded
// incidents to the person on call by no SMS; nil when there is none. The
// policy as written stands, but its author may have meant the routing.
func (c *Config) wakingDegraded() []any {
	sev := events.SeverityDegraded
	if c.Notify.Policies.defaulted[sev] || slices.Contains(c.Notify.Route(sev).OnCall, "sms") {
		return nil
	}
	for i, r := range c.Notify.Policies.For(sev) {
		if slices.Contains(r.By, "sms") || slices.Contains(r.By, "voice") {
			return p("notify", "policies", string(sev), i, "by")
		}
	}
	return nil
}

// reaches reports whether a rung reaches anybody at t.
func (c *Config) reaches(r Rung, t time.Time) bool {
	for _, w := range r.Who {
		for _, s := range c.Reach(w, t) {
			if slices.ContainsFunc(r.By, s.Reaches) {
				return true
			}
		}
	}
	return false
}

// rotationChanges are the moments in [from, to) at which who is on call
// or secondary may change, from first: between two of them everything a
// rung names stands for the same people.
func (c *Config) rotationChanges(from, to time.Time) []time.Time {
	ts := []time.Time{from}
	add := func(t time.Time) {
		if t.After(from) && t.Before(to) {
			ts = append(ts, t)
		}
	}
	o := c.OnCall
	for _, h := range []time.Time{o.Handover, o.Secondary.Handover} {
		if h.IsZero() {
			continue
		}
		for w := weekOf(h, from) + 1; ; w++ {
			t := h.Add(time.Duration(w) * week)
			if !t.Before(to) {
				break
			}
			add(t)
		}
	}
	for _, ov := range slices.Concat(o.Overrides, o.Secondary.Overrides) {
		add(ov.From)
		add(ov.Until)
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(ts, time.Time.Equal)
}

func policyNames(sevs []string) string {
	if len(sevs) == 1 {
		return sevs[0] + " policy"
	}
	return strings.Join(sevs, " and ") + " policies"
}
