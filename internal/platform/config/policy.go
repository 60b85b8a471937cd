package config

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Policies are the escalation policies: for an incident of each severity
// that pages, the rungs that go further while nobody acknowledges it.
// Warnings have none: they are emailed, never escalated. A severity left
// out takes the default (see DefaultPolicy).
type Policies struct {
	Degraded []Rung `yaml:"degraded"`
	Outage   []Rung `yaml:"outage"`

	defaulted map[events.Severity]bool // the policies the file left out
}

// For is the policy of severity sev; nil for a warning.
func (ps Policies) For(sev events.Severity) []Rung {
	switch sev {
	case events.SeverityDegraded:
		return ps.Degraded
	case events.SeverityOutage:
		return ps.Outage
	}
	return nil
}

// Rung is one step of a policy: After the policy started, if nobody has
// acknowledged the incident, Who is told By each channel they have.
type Rung struct {
	After Duration `yaml:"after"`
	// Who: "oncall", "secondary", "team" (every staff member) or a staff
	// member's name.
	Who []string `yaml:"who"`
	// By: "sms", "voice" (a phone call) or "email".
	By []string `yaml:"by"`
}

// The words a rung names people by, besides their names.
const (
	WhoOnCall    = "oncall"
	WhoSecondary = "secondary"
	WhoTeam      = "team"
)

// PolicyChannels are the channels a rung may page by.
var PolicyChannels = []string{"sms", "voice", "email"}

// Secondary says who backs up the person on call. By default it is the
// next person of the rotation after the one whose week it is: next
// week's person on call, who inherits the incident anyway. A rotation of
// its own, handed over weekly like the primary's, chooses otherwise: the
// primary rotation shifted by one ([Dee, Ann, Bob, Cy] for [Ann, Bob, Cy,
// Dee]) makes last week's person on call the secondary. Nobody is ever
// both: a week in which they would be is a gap.
type Secondary struct {
	Rotation  []string   `yaml:"rotation"`
	Handover  time.Time  `yaml:"handover"` // default: oncall.handover
	Overrides []Override `yaml:"overrides"`
}

// DefaultPolicy is the policy of a severity that the file leaves out: the
// person on call by SMS at once and by a phone call after 5 minutes, the
// secondary by both after 10, and the whole team by SMS and email after
// 20. Without Twilio every rung is by email and the phone call is left
// out; without a secondary (a rotation of fewer than two and no
// secondary rotation) the secondary's rung is. The default degraded
// policy of a file that routes degraded incidents to the person on call
// by no SMS (notify.severity.degraded.oncall: [email]) is by email too:
// a team that chose not to be woken for a box still serving is not woken
// by the policy it never wrote.
func (c *Config) DefaultPolicy(sev events.Severity) []Rung {
	phone := c.Providers.Twilio != nil
	if sev == events.SeverityDegraded && !slices.Contains(c.Notify.Route(sev).OnCall, "sms") {
		phone = false
	}
	rung := func(after time.Duration, who string, by ...string) Rung {
		return Rung{After: Duration(after), Who: []string{who}, By: by}
	}
	var ps []Rung
	if phone {
		ps = append(ps, rung(0, WhoOnCall, "sms"), rung(5*time.Minute, WhoOnCall, "voice"))
	} else {
		ps = append(ps, rung(0, WhoOnCall, "email"))
	}
	if c.OnCall.hasSecondary() {
		if phone {
			ps = append(ps, rung(10*time.Minute, WhoSecondary, "sms", "voice"))
		} else {
			ps = append(ps, rung(10*time.Minute, WhoSecondary, "email"))
		}
	}
	if phone {
		ps = append(ps, rung(20*time.Minute, WhoTeam, "sms", "email"))
	} else {
		ps = append(ps, rung(20*time.Minute, WhoTeam, "email"))
	}
	return ps
}

func (o OnCall) hasSecondary() bool {
	distinct := func(names []string) int {
		s := slices.Clone(names)
		slices.Sort(s)
		return len(slices.Compact(s))
	}
	return distinct(o.Rotation) > 1 || len(o.Secondary.Rotation) > 0 || len(o.Secondary.Overrides) > 0
}

func (c *Config) policyDefaults() {
	ps := &c.Notify.Policies
	ps.defaulted = map[events.Severity]bool{}
	if ps.Degraded == nil {
		ps.Degraded, ps.defaulted[events.SeverityDegraded] = c.DefaultPolicy(events.SeverityDegraded), true
	}
	if ps.Outage == nil {
		ps.Outage, ps.defaulted[events.SeverityOutage] = c.DefaultPolicy(events.SeverityOutage), true
	}
}

const week = 7 * 24 * time.Hour

// weekOf is the index of the rotation week t falls in, counted from the
// handover, rounded down before it too.
func weekOf(handover, t time.Time) int64 {
	d := t.Sub(handover)
	w := int64(d / week)
	if d < 0 && d%week != 0 {
		w--
	}
	return w
}

func turn(r []string, w int64) string {
	n := int64(len(r))
	return r[((w%n)+n)%n]
}

// SecondaryAt is the name of the secondary at t, "" when there is none:
// no rotation to take one from, or nobody but the person on call.
func (c *Config) SecondaryAt(t time.Time) string {
	o := c.OnCall
	primary := c.OnCallAt(t)
	for _, ov := range o.Secondary.Overrides {
		if !t.Before(ov.From) && t.Before(ov.Until) {
			if ov.Name == primary {
				return ""
			}
			return ov.Name
		}
	}
	if r := o.Secondary.Rotation; len(r) > 0 {
		h := o.Secondary.Handover
		if h.IsZero() {
			h = o.Handover
		}
		if name := turn(r, weekOf(h, t)); name != primary {
			return name
		}
		return ""
	}
	r := o.Rotation
	if len(r) == 0 {
		return ""
	}
	w := weekOf(o.Handover, t)
	for i := 1; i <= len(r); i++ {
		if name := turn(r, w+int64(i)); name != primary {
			return name
		}
	}
	return ""
}

// Team is every staff member who can be told: all with a phone or an
// email address.
func (c *Config) Team() []Staff {
	var out []Staff
	for _, s := range c.Staff {
		if s.Phone != "" || s.Email != "" {
			out = append(out, s)
		}
	}
	return out
}

// Reach is the people a rung's word stands for at t: the person on call
// (everyone without a rotation, as for every other message), the
// secondary, the team, or the staff member of that name. None is a gap.
func (c *Config) Reach(who string, t time.Time) []Staff {
	name := who
	switch who {
	case WhoTeam:
		return c.Team()
	case WhoOnCall:
		if name = c.OnCallAt(t); name == "" {
			return c.Team()
		}
	case WhoSecondary:
		if name = c.SecondaryAt(t); name == "" {
			return nil
		}
	}
	if s, ok := c.StaffNamed(name); ok {
		return []Staff{s}
	}
	return nil
}

// Reaches reports whether a person has what a channel needs: a phone for
// sms and voice, an email address for email.
func (s Staff) Reaches(channel string) bool {
	switch channel {
	case "sms", "voice":
		return s.Phone != ""
	case "email":
		return s.Email != ""
	}
	return false
}
