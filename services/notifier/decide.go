package notifier

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// pacing is how often people may be told, and how an unacknowledged
// incident escalates.
type pacing struct {
	GroupWait, GroupWindow, UpdateEvery, RepeatEvery time.Duration
	// Policies are the escalation policies by severity; Staff says whom
	// a rung's words stand for when it fires.
	Policies policy.Policies
	Staff    policy.Resolver
}

// decide says, for an incident's state with one event merged in, which
// message goes out now, if any, and when the event must be looked at again
// (0: never). It is pure, so that the pacing of a storm can be tested with
// any clock:
//   - the first message goes out GroupWait after the incident opened (at
//     once by default) and tells of every update merged until then;
//   - updates after it are gathered for GroupWindow into one message, then
//     sent at most every UpdateEvery; an update a message already told of
//     is done;
//   - worse news within the incident than its last message told (its
//     severity rises, another box serves nobody, a box said to serve
//     again serves nobody again) pages at once, whatever the pacing, and
//     whoever acknowledged the milder state, unless only flapping
//     servers are down; boxes going down one after another at
//     the same severity are paged at most once per GroupWindow, so that a
//     storm pages once, not once a box;
//   - an incident that pages (not a warning, not a flapping server's)
//     escalates by its severity's policy, started when the opening page
//     goes: the opening is the policy's first rung. It goes as routed
//     (notify.severity.*.oncall to the person on call, .others to the
//     rest, by email by default), and whoever the rungs due at once page
//     also gets it by the rungs' channels: routing and rung 0 add up, so
//     that neither a rung nor a route the operator wrote is dropped;
//   - each later rung is an escalation message when it falls due, to
//     whom it pages, by its channels, naming the rungs skipped since the
//     last that fired; rungs that page nobody go with the next that
//     does. The opening event is the timer, held until the next rung;
//   - the first acknowledgement at or after the policy's start stops
//     every later rung, and everyone told of the incident but the acker
//     hears of it once: by SMS if a page rang their phone, else by email;
//   - worse news at a higher severity hands over to that severity's
//     policy (policy.Rise): the rungs it makes due go with the page of
//     the worse news. When the rise starts the policy afresh (after an
//     acknowledgement), an update is held as the timer too, for the
//     opening event may be done;
//   - an incident without a policy running (a warning, a flapping
//     server's) is repeated every RepeatEvery after the first message,
//     the opening event as the timer. A warning is repeated until it is
//     fixed, acknowledged or not;
//   - the resolution goes out at once to whoever was told of the incident,
//     or by email if nobody was.
func decide(st *incidentState, ev events.Event, now time.Time, p pacing) (next *sending, later time.Duration) {
	first := st.FirstSent.IsZero()
	page := func(kind string, n int) *sending {
		return &sending{Kind: kind, N: n, At: now, Seq: st.Seq, Severity: st.Severity(), Down: st.DownBoxes()}
	}
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		switch {
		case st.Resolved != nil && first:
			return nil, 0 // over before anyone was told: nobody is
		case first:
			if wait := d.Opened.Add(p.GroupWait).Sub(now); wait > 0 {
				return nil, wait
			}
			s := page(kindOpened, 0)
			if !st.Warning && !st.OpenedFlapping && len(p.Policies[s.Severity]) > 0 {
				rec := policy.Start(s.Severity, now)
				if a := st.Acked; a != nil {
					rec.Ack = &policy.Ack{By: a.By, At: a.At}
				}
				s.Policy, s.Steps = &rec, policy.Evaluate(p.Policies, rec, now, p.Staff).Steps
			}
			return s, 0
		case st.Resolved != nil:
			return nil, 0
		case st.escalating():
			return escalate(st, now, p)
		case st.Acked != nil && !st.Warning || p.RepeatEvery <= 0:
			return nil, 0
		}
		due := st.FirstSent.Add(time.Duration(st.Reminders+1) * p.RepeatEvery)
		if now.Before(due) {
			return nil, due.Sub(now)
		}
		return &sending{Kind: kindReminder, N: st.Reminders + 1, At: now, Seq: st.Seq}, 0
	case *events.IncidentUpdated:
		if first || st.Resolved != nil {
			return nil, 0 // the first message tells of it
		}
		if last, _ := st.lastTold(); st.worse() && (st.Severity().Worse(last) || !now.Before(st.PagedAt.Add(p.GroupWindow))) {
			s := page(kindWorse, st.Worse+1)
			if rec := policy.Rise(p.Policies, st.Policy, s.Severity, now); rec.Severity != st.Policy.Severity && len(p.Policies[rec.Severity]) > 0 {
				s.Policy, s.Steps = &rec, policy.Evaluate(p.Policies, rec, now, p.Staff).Steps
			}
			return s, 0
		}
		s, later := decideUpdate(st, d, now, p)
		if s != nil || !st.escalating() {
			return s, later
		}
		// Rungs due go before news by email; a policy a rise started
		// afresh has this update as its timer too.
		esc, wait := escalate(st, now, p)
		switch {
		case esc != nil:
			return esc, 0
		case st.Policy.Started.After(st.FirstSent) && wait > 0 && (later == 0 || wait < later):
			return nil, wait
		}
		return nil, later
	case *events.IncidentAcknowledged:
		if st.Resolved != nil || !st.escalating() || st.Policy.Ack != nil || d.At.Before(st.Policy.Started) {
			return nil, 0 // nothing to stop, or it acknowledged a milder state
		}
		st.Policy.Ack = &policy.Ack{By: d.By, At: d.At}
		return &sending{Kind: kindAcked, N: st.AckNotices + 1, At: now, Seq: st.Seq, Ack: st.Policy.Ack}, 0
	case *events.IncidentResolved:
		// Over before anyone was told (the notifier was behind, or the
		// first message was still waiting): the resolution still goes, by
		// email, so that the outage is on record.
		if st.ResolvedSent {
			return nil, 0
		}
		return &sending{Kind: kindResolved, At: now, Seq: st.Seq}, 0
	}
	return nil, 0
}

// decideUpdate is what an update no worse than the last page calls for:
// a digest, now or later.
func decideUpdate(st *incidentState, d *events.IncidentUpdated, now time.Time, p pacing) (*sending, time.Duration) {
	// Another box down within group_window of the last page, no
	// worse than it: gathered, and paged when the window is over
	// (the update that wakes the incident then finds it worse).
	if d.Seq <= st.Covered && !st.worse() {
		return nil, 0 // a message since tells of it
	}
	if st.worse() {
		if due := st.PagedAt.Add(p.GroupWindow); now.Before(due) {
			return nil, due.Sub(now)
		}
	}
	gap := p.UpdateEvery
	if st.Digests == 0 {
		gap = p.GroupWindow
	}
	if due := st.LastSent.Add(gap); now.Before(due) {
		return nil, due.Sub(now)
	}
	return &sending{Kind: kindDigest, N: st.Digests + 1, At: now, Seq: st.Seq}, 0
}

// escalating reports whether the incident's escalation policy runs, or
// ran: once started, it stands for the reminders.
func (st *incidentState) escalating() bool { return !st.Policy.Started.IsZero() && !st.Warning }

// escalate is the next message of the incident's escalation, or how long
// until a rung falls due (0: none will). The rungs that page nobody go
// with the first due after them that pages someone, whose message names
// them; trailing ones are settled by a message to nobody.
func escalate(st *incidentState, now time.Time, p pacing) (*sending, time.Duration) {
	d := policy.Evaluate(p.Policies, st.Policy, now, p.Staff)
	if len(d.Steps) == 0 {
		if d.Next.IsZero() {
			return nil, 0
		}
		return nil, d.Next.Sub(now)
	}
	steps := d.Steps
	if i := slices.IndexFunc(steps, func(s policy.Step) bool { return !s.Gap() }); i >= 0 {
		steps = steps[:i+1]
	}
	// N is the place of the rung that pages in the record: the opening
	// is the first, so the default policy's call is escalation-1.
	return &sending{Kind: kindEscalation, N: len(st.Policy.Fired) + len(steps) - 1, At: now, Seq: st.Seq,
		Severity: st.Policy.Severity, Steps: steps}, 0
}

// worse reports whether the incident is worse now than the people on call
// were last told: a higher severity than the last message said, or a box
// serving nobody that it did not name. An outage a digest said was back to
// degraded is news again when the box goes down again. A server marked
// flapping is damped: while every server down is flapping, only news worse
// than any page so far pages. A warning, or a server back, is never worse.
func (st *incidentState) worse() bool {
	if st.Warning {
		return false
	}
	if risen(st.Severity(), st.DownBoxes(), st.Paged, st.PagedDown) {
		return true
	}
	sev, down := st.lastTold()
	return risen(st.Severity(), st.DownBoxes(), sev, down) && !st.onlyFlapping()
}

// risen reports whether severity sev with boxes down is worse than was
// told: a higher severity, or a box down that was not named.
func risen(sev events.Severity, down []string, toldSev events.Severity, toldDown []string) bool {
	if sev.Worse(toldSev) {
		return true
	}
	return slices.ContainsFunc(down, func(b string) bool { return !slices.Contains(toldDown, b) })
}

// lastTold is the severity and the boxes down the last message telling of
// the incident's state said; the last page's for a state kept before
// that was recorded.
func (st *incidentState) lastTold() (events.Severity, []string) {
	if st.LastSeverity == "" {
		return st.Paged, st.PagedDown
	}
	return st.LastSeverity, st.LastDown
}

// onlyFlapping reports whether every server down is marked flapping.
func (st *incidentState) onlyFlapping() bool {
	return len(st.Down) > 0 && !slices.ContainsFunc(st.Down, func(s string) bool { return !slices.Contains(st.Flapping, s) })
}

// sent records that a message went out to everyone it was for.
func (st *incidentState) sent(s sending) {
	st.Sending = nil
	st.LastSent = s.At
	st.Covered = max(st.Covered, s.Seq)
	st.ActionsTold = max(st.ActionsTold, s.Actions)
	if s.Kind == kindOpened || s.Kind == kindWorse {
		st.PagedAt = s.At
		if s.Severity.Worse(st.Paged) {
			st.Paged = s.Severity
		}
		for _, b := range s.Down {
			if !slices.Contains(st.PagedDown, b) {
				st.PagedDown = append(st.PagedDown, b)
			}
		}
	}
	switch s.Kind {
	case kindOpened, kindWorse:
		st.LastSeverity, st.LastDown = s.Severity, slices.Clone(s.Down)
	case kindDigest, kindReminder, kindEscalation:
		// Composed from the state as it is: what it said.
		st.LastSeverity, st.LastDown = st.Severity(), st.DownBoxes()
	}
	if s.Policy != nil {
		st.Policy = *s.Policy
	}
	st.Policy.Fired = append(st.Policy.Fired, s.Steps...)
	switch s.Kind {
	case kindAcked:
		st.AckNotices = s.N
	case kindWorse:
		st.Worse = s.N
	case kindOpened:
		st.FirstSent = s.At
	case kindDigest:
		st.Digests = s.N
	case kindReminder:
		st.Reminders = s.N
	case kindResolved:
		st.ResolvedSent = true
	}
}
