package notifier

import (
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
//   - an unacknowledged incident is repeated every RepeatEvery after the
//     first message; the opening event is the timer;
//   - the resolution goes out at once to whoever was told of the incident,
//     or by email if nobody was.
func decide(st *incidentState, ev events.Event, now time.Time, p pacing) (next *sending, later time.Duration) {
	first := st.FirstSent.IsZero()
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		switch {
		case st.Resolved != nil && first:
			return nil, 0 // over before anyone was told: nobody is
		case first:
			if wait := d.Opened.Add(p.GroupWait).Sub(now); wait > 0 {
				return nil, wait
			}
			return &sending{Kind: kindOpened, At: now, Seq: st.Seq}, 0
		case st.Resolved != nil || st.Acked != nil || p.RepeatEvery <= 0:
			return nil, 0
		}
		due := st.FirstSent.Add(time.Duration(st.Reminders+1) * p.RepeatEvery)
		if now.Before(due) {
			return nil, due.Sub(now)
		}
		return &sending{Kind: kindReminder, N: st.Reminders + 1, At: now, Seq: st.Seq}, 0
	case *events.IncidentUpdated:
		if first || st.Resolved != nil || d.Seq <= st.Covered {
			return nil, 0 // the first message, or one since, tells of it
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

// sent records that a message went out to everyone it was for.
func (st *incidentState) sent(s sending) {
	st.Sending = nil
	st.LastSent = s.At
	st.Covered = max(st.Covered, s.Seq)
	st.ActionsTold = max(st.ActionsTold, s.Actions)
	switch s.Kind {
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
