package notifier

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// pacing is how often people may be told.
type pacing struct {
	GroupWait, GroupWindow, UpdateEvery, RepeatEvery time.Duration
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
//   - worse news within the incident (its severity rises, another box
//     serves nobody) pages at once, whatever the pacing, and whoever
//     acknowledged the milder state; boxes going down one after another at
//     the same severity are paged at most once per GroupWindow, so that a
//     storm pages once, not once a box;
//   - an unacknowledged incident is repeated every RepeatEvery after the
//     first message; the opening event is the timer. A warning is
//     repeated until it is fixed, acknowledged or not;
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
			return page(kindOpened, 0), 0
		case st.Resolved != nil || st.Acked != nil && !st.Warning || p.RepeatEvery <= 0:
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
		if st.worse() && (st.Severity().Worse(st.Paged) || !now.Before(st.PagedAt.Add(p.GroupWindow))) {
			return page(kindWorse, st.Worse+1), 0
		}
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

// worse reports whether the incident is worse now than the people on call
// were last paged about: a higher severity, or a box serving nobody that
// no page named. A warning, or a server back, is never worse.
func (st *incidentState) worse() bool {
	if st.Warning {
		return false
	}
	if st.Severity().Worse(st.Paged) {
		return true
	}
	for _, b := range st.DownBoxes() {
		if !slices.Contains(st.PagedDown, b) {
			return true
		}
	}
	return false
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
