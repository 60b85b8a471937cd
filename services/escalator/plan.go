package escalator

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/internal/incident"
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
// step not cancelled; a step whose timeout is 0 is off. The public step
// waits, past its timeout, for a box to be down: the update that says so
// brings it.
func due(st *state, datacentreAfter, socialAfter time.Duration, now time.Time) (steps []string, next time.Time) {
	if st.Resolved != nil || st.Opened.IsZero() {
		return nil, time.Time{}
	}
	for _, s := range []struct {
		step  string
		after time.Duration
		done  time.Time
	}{{config.StepDatacentre, datacentreAfter, st.DatacentreDone}, {config.StepSocial, socialAfter, st.SocialDone}} {
		if s.after <= 0 || !s.done.IsZero() || st.Cancelled[s.step] {
			continue
		}
		at := st.Opened.Add(s.after)
		if !now.Before(at) {
			if s.step != config.StepSocial || st.Public() {
				steps = append(steps, s.step)
			}
		} else if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return steps, next
}
