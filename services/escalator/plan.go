package escalator

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// state is what the escalator keeps of one incident in the escalations
// bucket: the incident as its events told it, and which steps were taken.
type state struct {
	incident.View

	// When each step was taken, and whether an acknowledgement cancelled it.
	DatacentreDone time.Time       `json:"datacentre_done,omitzero"`
	SocialDone     time.Time       `json:"social_done,omitzero"`
	Cancelled      map[string]bool `json:"cancelled,omitempty"`
	// WakeAt is when an event held back will bring the incident up
	// again: another event need not be held for the same time.
	WakeAt time.Time `json:"wake_at,omitzero"`
}

// maxServers is how many servers' details the state keeps for the
// datacentre's ticket; the rest are listed by name.
const maxServers = 200

func (st *state) merge(ev events.Event, cfg *config.Config) {
	acked := st.Acked != nil
	st.View.Merge(ev, maxServers)
	if !acked && st.Acked != nil {
		for _, step := range cfg.Escalation.AckCancels {
			if st.Cancelled == nil {
				st.Cancelled = map[string]bool{}
			}
			st.Cancelled[step] = true
		}
	}
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// due says which steps are to be taken now, and when the next one falls due
// (zero: none left, or none until something changes). A step is taken
// once, when its timeout has passed with the incident unresolved and the
// step not cancelled; a step whose timeout is 0 is off. Warnings never
// escalate: nothing has failed.
//
// The order of telling holds whatever the clocks say: the datacentre's
// clock runs from the first confirmed failure, but its email waits until
// the people on call were sent a page; the public's clock runs from when
// a box first served nobody (a degraded incident never goes public), and
// its posts wait until the people on call were paged about the outage.
// The notifier's word that they were brings the step. The public also
// waits for the datacentre: its posts and banner go only with or after
// the datacentre's email, unless that step is off or cancelled. They go
// in the same batch as the email's first attempt, so an email that keeps
// failing never keeps the public in the dark.
func due(st *state, datacentreAfter, socialAfter time.Duration, now time.Time) (steps []string, next time.Time) {
	if st.Resolved != nil || st.Opened.IsZero() || st.Warning {
		return nil, time.Time{}
	}
	type step struct {
		step  string
		after time.Duration
		done  time.Time
		from  time.Time // when its clock started; zero: not yet
		ready bool      // staff were told what it would tell
	}
	// The datacentre's step is settled when it is off, cancelled, taken,
	// or about to be taken now.
	dcSettled := datacentreAfter <= 0 || !st.DatacentreDone.IsZero() || st.Cancelled[config.StepDatacentre]
	// Nothing goes further than what staff were told: the ticket says how
	// bad it is and which boxes serve nobody, so it waits for staff to
	// have been told at least that; so do the posts, which name the boxes.
	toldNow := !st.ToldAt.IsZero() && !st.Severity().Worse(st.Told) && st.toldOf(st.DownBoxes())
	for _, s := range []step{
		{config.StepDatacentre, datacentreAfter, st.DatacentreDone, st.Opened, toldNow},
		{config.StepSocial, socialAfter, st.SocialDone, st.OutageSince, st.Public() && st.Told == events.SeverityOutage && toldNow},
	} {
		if s.after <= 0 || !s.done.IsZero() || st.Cancelled[s.step] || s.from.IsZero() {
			continue
		}
		at := s.from.Add(s.after)
		switch {
		case now.Before(at):
			if next.IsZero() || at.Before(next) {
				next = at
			}
		case s.step == config.StepSocial && !dcSettled:
			// Waits for the datacentre's step, whose own deadline or
			// page to staff brings the incident up again.
		case s.ready:
			steps = append(steps, s.step)
			if s.step == config.StepDatacentre {
				dcSettled = true
			}
		}
	}
	return steps, next
}

// toldOf reports whether staff were told that each of boxes serves nobody.
func (st *state) toldOf(boxes []string) bool {
	return !slices.ContainsFunc(boxes, func(b string) bool { return !slices.Contains(st.ToldDown, b) })
}

// publicDown is the boxes the public is told served nobody: those that
// did and that staff were told of. A box down and back before any page
// named it is not named to the public before staff.
func (st *state) publicDown() []string {
	out := slices.DeleteFunc(slices.Clone(st.EverDown), func(b string) bool { return !slices.Contains(st.ToldDown, b) })
	if len(out) == 0 {
		return st.EverDown // told of an outage before the boxes were named
	}
	return out
}
