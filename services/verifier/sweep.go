package verifier

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// An incident is told that a server is back by the work the server's own
// record holds (see carryOut). Should that ever go missing (a write whose
// outcome was lost with a NATS leader, say), the incident would hold the
// server as down for ever: reminders and escalations would go on paging
// for an outage that is over, and the page would stay red. So the verifier
// also looks, now and then, for a server an open incident holds as down
// whose own record says it is back, and tells the incident. Seen on two
// looks in a row, so that a record being written between them, or read
// from a replica a moment behind, is never taken for one.

// DefaultSweepEvery is how often the verifier looks.
const DefaultSweepEvery = 30 * time.Second

// WithSweepEvery sets how often the verifier looks for servers an open
// incident still holds though they are back.
func WithSweepEvery(d time.Duration) Option { return func(v *Verifier) { v.sweepEvery = d } }

func (v *Verifier) sweepLoop(ctx context.Context, st stores) {
	t := time.NewTicker(v.sweepEvery)
	defer t.Stop()
	var seen map[string]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			seen = v.sweep(ctx, st, seen)
		}
	}
}

// sweep tells each open incident of the servers it holds as down though
// they are back, if the look before saw them so too, and returns what
// this look saw.
func (v *Verifier) sweep(ctx context.Context, st stores, before map[string]bool) map[string]bool {
	seen := map[string]bool{}
	warn := func(msg string, args ...any) {
		if ctx.Err() == nil { // not a stop
			v.log.Warn(msg, args...)
		}
	}
	lists, err := openLists(ctx, st.incidents.KV)
	if err != nil {
		warn("could not read the open incidents to look for servers they still hold", "err", err)
		return before
	}
	for _, open := range lists {
		for _, o := range open.Incidents {
			if err := v.sweepIncident(ctx, st, o.ID, before, seen); err != nil {
				warn("could not look at an open incident's servers", "incident", o.ID, "err", err)
			}
		}
	}
	return seen
}

func (v *Verifier) sweepIncident(ctx context.Context, st stores, id string, before, seen map[string]bool) error {
	var inc incidentRecord
	if rev, err := st.incidents.Read(ctx, id, &inc); err != nil || rev == 0 || !inc.Resolved.IsZero() {
		return err
	}
	for _, server := range slices.Sorted(maps.Keys(inc.Members)) {
		m := inc.Members[server]
		if !m.Recovered.IsZero() {
			continue
		}
		target, ok := v.cfg.Target(server)
		if !ok {
			continue // no longer in the config: see releaseRemoved
		}
		rec, _, err := v.load(ctx, st.servers, server)
		if err != nil {
			return err
		}
		if !back(rec, id, m) {
			continue
		}
		k := id + "/" + server + "/" + m.Outage
		if seen[k] = true; !before[k] {
			continue
		}
		v.log.Warn("an open incident still held as down a server whose record says it is back; telling it now",
			"incident", id, "server", server, "state", rec.State, "since", rec.Since)
		// Of this outage only: should the server fail again and join
		// again before this write, it stays.
		l := leaving{Incident: id, At: rec.Since, Withdrawn: rec.State == events.StateNotInService, Outage: m.Outage}
		if err := v.leave(ctx, st, target, l); err != nil {
			return err
		}
	}
	return nil
}

// back reports whether a server's record says it left the outage m of the
// incident: up (or taken out of service) and holding no longer that
// incident, from a result newer than the one that made it join. A record
// read from before it joined (a replica behind) is older than that.
func back(rec record, incident string, m judge.Member) bool {
	switch rec.State {
	case events.StateUp, events.StateNotInService:
	default:
		return false
	}
	return rec.Incident != incident && rec.Last.After(m.Since)
}
