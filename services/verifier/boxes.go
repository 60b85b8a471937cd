package verifier

import (
	"context"
	"fmt"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// boxRecord is what the boxes bucket holds per box: the record other
// services read, and beside it the count that box event ids derive from
// and the change decided but perhaps not yet published.
type boxRecord struct {
	events.BoxRecord
	Seq int64 `json:"seq"`
	bus.Outbox
}

// boxWith judges a box as it is with one of its servers in a new state,
// from the stored records of the others.
func (v *Verifier) boxWith(ctx context.Context, servers bus.Records, box *config.Box, server string, state events.ServerState) (events.BoxState, []string, error) {
	states, err := v.boxServers(ctx, servers, box)
	if err != nil {
		return "", nil, err
	}
	states[server] = state
	bs, up, _ := judge.BoxState(states)
	return bs, up, nil
}

// boxServers is the stored state of each server of a box in service.
func (v *Verifier) boxServers(ctx context.Context, servers bus.Records, box *config.Box) (map[string]events.ServerState, error) {
	states := map[string]events.ServerState{}
	for _, s := range box.Servers {
		if !s.Serving() {
			continue
		}
		rec, rev, err := v.load(ctx, servers, s.ID)
		if err != nil {
			return nil, err
		}
		// A read served by a replica behind its leader may miss what this
		// verifier wrote a moment ago (a box judged "degraded" with every
		// server down): the newer of the two revisions is the record.
		if c, ok := v.known(s.ID); ok && c.rev > rev {
			rec = c.rec
		}
		states[s.ID] = rec.State
	}
	return states, nil
}

// judgeBox works a box's state out again from its servers' records, and
// records and announces a change, then tells the box's open incident.
// Two servers of a box may change at once, in different workers: the box
// record is written with compare-and-set, and a writer that lost the race
// reads every server again.
func (v *Verifier) judgeBox(ctx context.Context, st stores, box *config.Box, at time.Time) error {
	var status events.BoxStatus
	var changed *events.BoxStateChanged
	_, _, err := bus.Change(ctx, st.boxes, box.ID, func(br *boxRecord) ([]bus.Outgoing, bool, error) {
		states, err := v.boxServers(ctx, st.servers, box)
		if err != nil {
			return nil, false, err
		}
		state, up, down := judge.BoxState(states)
		status, changed = events.BoxStatus{Box: box.ID, State: state, Up: up}, nil
		if state == br.State {
			return nil, false, nil
		}
		changed = &events.BoxStateChanged{Box: box.ID, From: br.State, To: state, Since: at, Up: up, Down: down}
		br.Seq++
		o, err := bus.Hold(events.New(fmt.Sprintf("%s/state/%d-%d", box.ID, br.Seq, at.UnixMilli()), "verifier", at, changed), 0)
		if err != nil {
			return nil, false, err
		}
		br.State, br.Since = state, at
		return []bus.Outgoing{o}, true, nil
	})
	if err != nil {
		return err // the next judgement of the box carries on
	}
	// Its open incident may not know yet, even with no change here, if
	// telling it failed last time.
	if err := v.boxChanged(ctx, st.incidents, box, status, at); err != nil {
		return err // judged again with the server's next result
	}
	switch {
	case changed == nil:
	case changed.To == events.BoxDown:
		v.log.Warn("box down: no server of it answers", "box", box.ID, "down", changed.Down)
	default:
		v.log.Info("box state changed", "box", box.ID, "to", changed.To, "down", changed.Down)
	}
	return nil
}
