package verifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// incidentRecord is what the incidents bucket holds per incident: the
// incident and the event decided but perhaps not yet published.
type incidentRecord struct {
	judge.Incident
	bus.Outbox
}

// groupLock serialises the joins of one datacentre within this process, so
// that a storm does not spin on compare-and-set; the bucket's revisions
// keep several processes correct.
func (v *Verifier) groupLock(datacentre string) func() {
	m, _ := v.groups.LoadOrStore(datacentre, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (v *Verifier) naming(datacentre string) judge.Naming {
	return judge.Naming{
		BoxName: func(id string) string {
			if b := v.cfg.Box(id); b != nil {
				return b.Name
			}
			return id
		},
		Datacentre: v.cfg.Datacentres[datacentre].Name,
	}
}

// join puts a server confirmed down into an incident and returns its id:
// the incident open for its box, or the one a server of its datacentre
// last joined within the group window, or a new one whose id is the
// server's outage id. Joining again for the same outage (a redelivery, a
// restart before the server's record was written) finds the same incident.
func (v *Verifier) join(ctx context.Context, ikv bus.Records, target config.Target, a events.AffectedServer, outage string, at time.Time, flapping bool) (string, error) {
	dc := target.Box.Datacentre
	defer v.groupLock(dc)()
	key := events.KeyOpenIncidents(dc)
	for attempt := 0; attempt < 20; attempt++ {
		var open judge.Open
		orev, err := bus.GetJSON(ctx, ikv.KV, key, &open)
		if err != nil {
			return "", err
		}
		for _, o := range open.Incidents {
			if !slices.Contains(o.Boxes, a.Box) {
				continue // the box is listed before its server joins
			}
			var rec incidentRecord
			rev, err := ikv.Read(ctx, o.ID, &rec)
			if err != nil {
				return "", err
			}
			if rev != 0 && rec.Members[a.Server].Outage == outage {
				if len(rec.Pending) > 0 {
					_, err = ikv.Finish(ctx, o.ID, &rec, rev, nil)
				}
				return o.ID, err
			}
		}
		id := open.Choose(a.Box, at, v.cfg.Incidents.GroupWindow.D())
		if id == "" {
			id = outage
		}
		open.Add(id, a.Box, at)
		if _, err := bus.PutJSON(ctx, ikv.KV, key, open, orev); bus.IsConflict(err) {
			continue
		} else if err != nil {
			return "", err
		}
		joined, err := v.addMember(ctx, ikv, id, dc, a, outage, at, flapping)
		if err != nil {
			return "", err
		}
		if joined {
			return id, nil
		}
		// Resolved since the list was read: it must go from the list.
		if err := v.closeOpen(ctx, ikv, dc, id); err != nil {
			return "", err
		}
	}
	return "", errors.New("the incidents open in the datacentre kept changing; retrying")
}

// addMember adds a server to an incident, creating it if it is new; false
// if the incident was resolved meanwhile.
func (v *Verifier) addMember(ctx context.Context, ikv bus.Records, id, dc string, a events.AffectedServer, outage string, at time.Time, flapping bool) (bool, error) {
	return v.updateIncident(ctx, ikv, id, func(rec *incidentRecord) (events.Payload, bool) {
		if !rec.Resolved.IsZero() {
			return nil, false
		}
		if rec.ID == "" {
			rec.ID, rec.Datacentre = id, dc
		}
		return rec.Join(a, outage, at, flapping, v.naming(dc)), true
	})
}

// leave marks a server of an incident back, or taken out of service,
// resolving the incident with the last one.
func (v *Verifier) leave(ctx context.Context, st stores, target config.Target, l leaving) error {
	ikv := st.incidents
	states, err := v.boxServers(ctx, st.servers, target.Box)
	if err != nil {
		return err
	}
	if target.Server.Serving() {
		states[target.Server.ID] = events.StateUp
	}
	bs, up, _ := judge.BoxState(states)
	status := events.BoxStatus{Box: target.Box.ID, State: bs, Up: up}
	resolved, unread := false, false
	if _, err := v.updateIncident(ctx, ikv, l.Incident, func(rec *incidentRecord) (events.Payload, bool) {
		if unread = rec.ID == ""; unread {
			return nil, false
		}
		if m, ok := rec.Members[target.Server.ID]; ok && l.Outage != "" && m.Outage != l.Outage {
			return nil, false // down again since, in a newer outage
		}
		p := rec.Leave(target.Server.ID, l.At, status, l.Withdrawn)
		resolved = !rec.Resolved.IsZero()
		return p, true
	}); err != nil {
		return err
	}
	if unread {
		// A server joins its incident before its record names it, so the
		// incident was written, and even its leader does not have it:
		// lost. If it is open, the sweep tells it (see sweep.go).
		v.log.Warn("a server left an incident that could not be read", "server", target.Server.ID, "incident", l.Incident)
	}
	if resolved {
		return v.closeOpen(ctx, ikv, target.Box.Datacentre, l.Incident)
	}
	return nil
}

// boxChanged tells the open incident holding a box of the box's new state:
// judged from all its servers, it may change without any server joining or
// leaving the incident (two of its servers failing at once, each judged
// while the other still looked up), and what staff are told of the
// service must follow it.
func (v *Verifier) boxChanged(ctx context.Context, ikv bus.Records, box *config.Box, b events.BoxStatus, at time.Time) error {
	// From the leader: the list was written a moment ago when a server of
	// the box has just opened an incident, and a replica behind would
	// leave that incident untold.
	var open judge.Open
	if _, err := ikv.ReadLeader(ctx, events.KeyOpenIncidents(box.Datacentre), &open); err != nil {
		return err
	}
	for _, o := range open.Incidents {
		if !slices.Contains(o.Boxes, box.ID) {
			continue
		}
		if _, err := v.updateIncident(ctx, ikv, o.ID, func(rec *incidentRecord) (events.Payload, bool) {
			if rec.ID == "" {
				return nil, false
			}
			return rec.BoxChanged(b, at), true
		}); err != nil {
			return err
		}
	}
	return nil
}

// updateIncident applies change to an incident's record, and records,
// publishes and marks published the event it returns (see bus.Change). An
// event recorded before a crash is published first. ok is what change
// said.
func (v *Verifier) updateIncident(ctx context.Context, ikv bus.Records, id string, change func(*incidentRecord) (events.Payload, bool)) (ok bool, err error) {
	var p events.Payload
	_, _, err = bus.Change(ctx, ikv, id, func(rec *incidentRecord) ([]bus.Outgoing, bool, error) {
		if p, ok = change(rec); !ok || p == nil {
			return nil, false, nil
		}
		o, err := bus.Hold(events.New(rec.eventID(p), "verifier", rec.eventTime(p), p), 0)
		if err != nil {
			return nil, false, bus.Permanent(err)
		}
		return []bus.Outgoing{o}, true, nil
	})
	if err != nil {
		return false, err
	}
	if ok && p != nil {
		v.logIncident(p)
	}
	return ok, nil
}

// countOpen counts the incidents open in every datacentre, from the lists
// join and closeOpen keep: one read per datacentre.
func countOpen(ctx context.Context, ikv jetstream.KeyValue) (int, error) {
	lists, err := openLists(ctx, ikv)
	if err != nil {
		return 0, fmt.Errorf("count open incidents: %w", err)
	}
	n := 0
	for _, open := range lists {
		n += len(open.Incidents)
	}
	return n, nil
}

// openLists reads every datacentre's list of open incidents.
func openLists(ctx context.Context, ikv jetstream.KeyValue) ([]judge.Open, error) {
	keys, err := ikv.ListKeysFiltered(ctx, events.FilterOpenIncidents)
	if err != nil {
		return nil, err
	}
	var names []string
	for key := range keys.Keys() {
		names = append(names, key)
	}
	if err := ctx.Err(); err != nil {
		return nil, err // the list was cut short
	}
	var lists []judge.Open
	for _, key := range slices.Compact(slices.Sorted(slices.Values(names))) { // a lister may name a key twice
		var open judge.Open
		if _, err := bus.GetJSON(ctx, ikv, key, &open); err != nil {
			return nil, err
		}
		lists = append(lists, open)
	}
	return lists, nil
}

// closeOpen takes a resolved incident off its datacentre's list.
func (v *Verifier) closeOpen(ctx context.Context, ikv bus.Records, dc, id string) error {
	key := events.KeyOpenIncidents(dc)
	for attempt := 0; attempt < 20; attempt++ {
		// From the leader: the incident may have been listed a moment
		// ago, and a replica behind would leave it listed, resolved.
		var open judge.Open
		rev, err := ikv.ReadLeader(ctx, key, &open)
		if err != nil || !open.Remove(id) {
			return err
		}
		if _, err := bus.PutJSON(ctx, ikv.KV, key, open, rev); !bus.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("the incidents open in %s kept changing; retrying", key)
}

func (rec *incidentRecord) eventID(p events.Payload) string {
	switch p.(type) {
	case *events.IncidentOpened:
		return rec.ID + "/opened"
	case *events.IncidentResolved:
		return rec.ID + "/resolved"
	}
	return fmt.Sprintf("%s/updated/%d", rec.ID, rec.Seq)
}

func (rec *incidentRecord) eventTime(p events.Payload) time.Time {
	switch p := p.(type) {
	case *events.IncidentOpened:
		return p.Opened
	case *events.IncidentResolved:
		return p.Resolved
	case *events.IncidentUpdated:
		return p.At
	}
	return time.Time{}
}

func (v *Verifier) logIncident(p events.Payload) {
	switch p := p.(type) {
	case *events.IncidentOpened:
		v.deps.Metrics.IncidentOpened()
		v.log.Warn("incident opened", "incident", p.Incident, "title", p.Title, "server", p.Servers[0].Server)
	case *events.IncidentUpdated:
		v.log.Info("incident updated", "incident", p.Incident, "title", p.Title, "added", len(p.Added), "recovered", p.Recovered, "flapping", p.Flapping, "still_down", len(p.Down))
	case *events.IncidentResolved:
		v.deps.Metrics.IncidentResolved()
		v.log.Info("incident resolved", "incident", p.Incident, "title", p.Title, "after", p.Resolved.Sub(p.Opened).Round(time.Second))
	}
}
