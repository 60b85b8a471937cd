package verifier

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// At start the verifier makes the bucket agree with the config, which may
// have changed while it was stopped: what no result will ever say is
// recorded here.

// markNotInService records the servers the config says are not in service:
// they are never checked, so no result would ever say so. A server put back
// in service is judged afresh by its first result.
func (v *Verifier) markNotInService(ctx context.Context, st stores) error {
	now := v.deps.Now()
	for i := range v.cfg.Boxes {
		b := &v.cfg.Boxes[i]
		for j := range b.Servers {
			srv := &b.Servers[j]
			known, ok := v.cached(srv.ID)
			if !ok {
				var err error
				if known.rec, known.rev, err = v.load(ctx, st.servers, srv.ID); err != nil {
					return err
				}
			}
			rec, rev := known.rec, known.rev
			to := events.StateNotInService
			if srv.Serving() {
				if rec.State != events.StateNotInService {
					continue
				}
				to = events.StateUnknown
			} else if rec.State == events.StateNotInService {
				continue
			}
			if rec.ID == "" {
				rec.ID = srv.ID
			}
			from := rec.State
			if from == "" {
				from = events.StateUnknown
			}
			if from == to {
				continue
			}
			rec.Seq++
			c := &events.ServerStateChanged{Server: srv.ID, Box: b.ID, From: from, To: to, Since: now, Incident: rec.Incident}
			o, err := bus.Hold(events.New(fmt.Sprintf("%s/state/%d-%d", srv.ID, rec.Seq, now.UnixMilli()), "verifier", now, c), 0)
			if err != nil {
				return err
			}
			rec.State, rec.Since, rec.Round = to, now, nil
			if to == events.StateNotInService && rec.Incident != "" {
				// Taken out of service while down: it leaves its incident,
				// which would otherwise wait for it forever.
				rec.Leave = &leaving{Incident: rec.Incident, At: now, Withdrawn: true}
				rec.Incident, rec.IncidentOpened, rec.IncidentTitle = "", time.Time{}, ""
				rec.Flapping, rec.Flips, rec.FailedSince, rec.Reason, rec.Locations = false, nil, time.Time{}, "", nil
			}
			rec.Pending = append(rec.Pending, o)
			rec.BoxDirty = true
			rec, rev, err = v.commit(ctx, st, config.Target{Box: b, Server: srv}, rec, rev)
			if err != nil {
				return err
			}
			v.remember(srv.ID, rec, rev)
			v.log.Info("server marked", "server", srv.ID, "state", to)
		}
	}
	return nil
}

// releaseRemoved lets the servers no longer in the config out of the
// incidents they were in: nothing checks them any more, and an incident
// waiting for them would stay open, reminding the person on call, for
// ever. Done again after a crash, it changes nothing more.
func (v *Verifier) releaseRemoved(ctx context.Context, st stores) error {
	v.mu.Lock()
	var gone []string
	for id, c := range v.cache {
		if _, ok := v.cfg.Target(id); !ok && c.rec.Incident != "" {
			gone = append(gone, id)
		}
	}
	v.mu.Unlock()
	now := v.deps.Now()
	for _, id := range slices.Sorted(slices.Values(gone)) {
		c, _ := v.cached(id)
		rec, incident := c.rec, c.rec.Incident
		dc, resolved := "", false
		if _, err := v.updateIncident(ctx, st.incidents, incident, func(inc *incidentRecord) (events.Payload, bool) {
			if inc.ID == "" {
				return nil, false
			}
			dc = inc.Datacentre
			p := inc.Leave(id, now, events.BoxStatus{}, true) // its box, if still there, is judged by its own servers
			resolved = !inc.Resolved.IsZero()
			return p, true
		}); err != nil {
			return err
		}
		if resolved {
			if err := v.closeOpen(ctx, st.incidents, dc, incident); err != nil {
				return err
			}
		}
		rec.Incident, rec.IncidentOpened, rec.IncidentTitle = "", time.Time{}, ""
		rev, err := save(ctx, st.servers, id, rec, c.rev)
		if err != nil {
			return err
		}
		v.remember(id, rec, rev)
		v.log.Info("a server no longer in the config left its incident", "server", id, "incident", incident)
	}
	return nil
}
