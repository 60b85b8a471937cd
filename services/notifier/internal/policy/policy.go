// Package policy decides how an unacknowledged incident escalates: which
// rungs of its severity's policy are due, whom each reaches and by which
// channels, which reached nobody, and when the next one is due. It is
// pure: the caller passes the time, records what fired, and asks again;
// the same record and the same moment always give the same answer, so a
// rung fires once however often the incident is looked at.
//
// The rules:
//   - a rung is due at Started + After, and fires once: the record says
//     which already did;
//   - an acknowledgement stops every rung not yet fired, due or not;
//   - a rung's words stand for the people the Resolver names when it
//     fires, not when it fell due, so that a late rung pages whoever is on
//     call then; each is paged by the rung's channels they have;
//   - a rung reaching nobody (a gap in a rotation, someone on call without
//     a phone for a voice rung) is skipped: the next rung that fires
//     names it, so that whoever it pages knows who was not told;
//   - a rise in severity switches to the new severity's policy (see Rise).
package policy

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The channels a rung pages by.
const (
	SMS   = "sms"
	Voice = "voice"
	Email = "email"
)

// Rung is one step of a policy: After the policy started, if nobody has
// acknowledged, Who are paged By each of these channels they have.
type Rung struct {
	After time.Duration
	Who   []string // "oncall", "secondary", "team" or a person's name: whatever the Resolver knows
	By    []string // SMS, Voice, Email
}

// Policy is the rungs of one severity, in the order they fire: After
// increasing.
type Policy []Rung

// Policies are the policies by severity; a severity without one (a
// warning) never escalates.
type Policies map[events.Severity]Policy

// Person is someone a rung may page, with what they can be paged by.
type Person struct {
	Name         string
	Phone, Email bool
}

// has reports whether a channel can reach the person.
func (p Person) has(channel string) bool {
	switch channel {
	case SMS, Voice:
		return p.Phone
	case Email:
		return p.Email
	}
	return false
}

// Resolver says whom a rung's word stands for at a moment: nobody, for a
// gap. It is asked when a rung fires.
type Resolver interface {
	Resolve(who string, at time.Time) []Person
}

// ResolverFunc is a function as a Resolver.
type ResolverFunc func(who string, at time.Time) []Person

// Resolve calls f.
func (f ResolverFunc) Resolve(who string, at time.Time) []Person { return f(who, at) }

// Ack is an acknowledgement of the incident.
type Ack struct {
	By string
	At time.Time
}

// Page is one person paged by a rung, and by which channels, in the
// rung's order.
type Page struct {
	Person string
	By     []string
}

// Skip is a rung that reached nobody, as the next rung to fire names it.
type Skip struct {
	Rung int
	Who  []string
	Due  time.Time
}

// Step is a rung settled: fired, or skipped for reaching nobody. The
// caller sends its pages and then appends it to the record.
type Step struct {
	Severity events.Severity
	Rung     int
	Due      time.Time // when the rung fell due: Started + After
	At       time.Time // when it was settled
	Pages    []Page    // whom it pages now
	// Already is who the rung would page by a channel a rung of the
	// policy before a rise already paged them by, in this stretch: they
	// are not paged again.
	Already []Page
	// Nobody is the rung's words that stood for nobody it could reach:
	// all of them when the rung is a gap.
	Nobody []string
	// Skips are the rungs skipped since the last that fired: this step's
	// message names them.
	Skips []Skip
}

// Gap reports whether the step reached nobody at all: it was skipped.
func (s Step) Gap() bool { return len(s.Pages) == 0 && len(s.Already) == 0 }

// Record is what the caller keeps of one incident's escalation.
type Record struct {
	Severity events.Severity // the worst the incident has been
	Started  time.Time       // when the running policy's clock started
	// Ack stops the policy. Rise clears one given before a rise: it
	// acknowledged the milder state.
	Ack *Ack
	// Fired is every step settled, in order, under any severity.
	Fired []Step
}

// Start is the record of an incident of severity sev first paged at t.
func Start(sev events.Severity, at time.Time) Record {
	return Record{Severity: sev, Started: at}
}

// Rise is the record once the incident's severity rose to sev at t; a
// severity no worse than the record's changes nothing (the policy of the
// worst severity keeps running while the incident gets better). The new
// severity's policy then runs, and:
//   - if the incident was acknowledged, or had no policy running (a
//     warning), it starts from its first rung at t, and the
//     acknowledgement is cleared: it was of the milder state;
//   - otherwise it keeps the clock of the policy before: every rung it
//     names for the time elapsed since Started is due at once, but nobody
//     is paged again by a channel a rung before the rise paged them by.
//     An unacknowledged incident has been unacknowledged that long, and
//     its worsening is no reason to start the wait for help again.
func Rise(ps Policies, r Record, sev events.Severity, at time.Time) Record {
	if !sev.Worse(r.Severity) {
		return r
	}
	if r.Ack != nil || len(ps[r.Severity]) == 0 || r.Started.IsZero() {
		r.Started, r.Ack = at, nil
	}
	r.Severity = sev
	r.Fired = slices.Clone(r.Fired)
	return r
}

// Decision is what is to be done now.
type Decision struct {
	// Steps are the rungs due and not yet settled, in order: send the
	// pages of each, then append them to the record. A gap's step has
	// no pages and must be recorded too.
	Steps []Step
	// Next is when the next rung falls due; zero when none will:
	// acknowledged, or the last rung settled.
	Next time.Time
}

// Evaluate says what the policy of the record's severity calls for at now.
func Evaluate(ps Policies, r Record, now time.Time, res Resolver) Decision {
	pol := ps[r.Severity]
	if len(pol) == 0 || r.Ack != nil {
		return Decision{}
	}
	settled := map[int]bool{}
	var had []Page // paged before a rise, in this stretch
	var skips []Skip
	for _, s := range r.Fired {
		if s.At.Before(r.Started) {
			continue
		}
		if s.Severity != r.Severity {
			had = append(had, s.Pages...)
			continue
		}
		settled[s.Rung] = true
		if s.Gap() {
			skips = append(skips, Skip{Rung: s.Rung, Who: pol.who(s.Rung), Due: s.Due})
		} else if len(s.Pages) > 0 {
			skips = nil
		}
	}
	var d Decision
	for i, rung := range pol {
		if settled[i] {
			continue
		}
		due := r.Started.Add(rung.After)
		if due.After(now) {
			d.Next = due
			break
		}
		s := settle(rung, had, now, res)
		s.Severity, s.Rung, s.Due, s.At = r.Severity, i, due, now
		switch {
		case s.Gap():
			skips = append(skips, Skip{Rung: i, Who: slices.Clone(rung.Who), Due: due})
		case len(s.Pages) > 0:
			s.Skips, skips = skips, nil
		}
		d.Steps = append(d.Steps, s)
	}
	return d
}

func (pol Policy) who(i int) []string {
	if i < len(pol) {
		return slices.Clone(pol[i].Who)
	}
	return nil
}

// settle is whom a rung pages at t: each person its words stand for, by
// the rung's channels they have, once however many words name them,
// minus what had already reached them.
func settle(rung Rung, had []Page, t time.Time, res Resolver) Step {
	var s Step
	at := map[string]int{}      // person → their page in s.Pages
	already := map[string]int{} // person → their page in s.Already
	for _, w := range rung.Who {
		reached := false
		for _, p := range res.Resolve(w, t) {
			for _, ch := range rung.By {
				if !p.has(ch) {
					continue
				}
				reached = true
				if paged(had, p.Name, ch) {
					add(&s.Already, already, p.Name, ch)
				} else {
					add(&s.Pages, at, p.Name, ch)
				}
			}
		}
		if !reached {
			s.Nobody = append(s.Nobody, w)
		}
	}
	return s
}

func add(pages *[]Page, index map[string]int, person, ch string) {
	i, ok := index[person]
	if !ok {
		*pages = append(*pages, Page{Person: person})
		i = len(*pages) - 1
		index[person] = i
	}
	if !slices.Contains((*pages)[i].By, ch) {
		(*pages)[i].By = append((*pages)[i].By, ch)
	}
}

func paged(pages []Page, person, ch string) bool {
	for _, p := range pages {
		if p.Person == person && slices.Contains(p.By, ch) {
			return true
		}
	}
	return false
}
