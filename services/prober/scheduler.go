package prober

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// window is the span of time one schedule message covers: every check due
// in it, for the whole fleet, goes in one message. The config's shortest
// interval is one window, so a server is due at most once in each.
const window = time.Second

// scheduleLead is how long before its window begins a window is published:
// time to store it and hand it to every location, a continent away, so that
// its first checks still run when they fall due.
const scheduleLead = 250 * time.Millisecond

// settle is how long before a window is published its live locations are
// judged: long enough for every replica to have heard every heartbeat
// written by then, so that they agree (whichever replica's view of a
// window is stored, it is stored whole; agreeing keeps a server from being
// checked from one location twice in a row).
const settle = 500 * time.Millisecond

// liveSet is what the scheduler asks of the locations' heartbeats.
type liveSet interface {
	WaitReady(ctx context.Context) error
	Settled(ctx context.Context, t time.Time) error
	At(t time.Time) []string
}

// windowOf is the number of the window t falls in, since the Unix epoch.
func windowOf(t time.Time) int64 {
	n := t.UnixNano()
	k := n / int64(window)
	if n < 0 && n%int64(window) != 0 {
		k--
	}
	return k
}

// windowStart is when window k begins.
func windowStart(k int64) time.Time { return time.Unix(0, k*int64(window)).UTC() }

// judged is the moment whose live locations window k's checks are given
// to: the same for every replica, whenever it publishes.
func judged(k int64) time.Time { return windowStart(k).Add(-scheduleLead - settle) }

// schedule publishes, shortly before each window, every server's check due
// in it with the live location chosen for each; and, when it falls due,
// the canary for every live location, which so travels the path of every
// scheduled check.
func (p *Prober) schedule(ctx context.Context, live liveSet) error {
	// Until the bucket is read, only this prober's own location is known live.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := live.WaitReady(wctx); err != nil && ctx.Err() == nil {
		p.log.Warn("locations not known yet; scheduling for this location only", "err", err)
	}
	cancel()
	var q, canary schedule.Queue
	for _, t := range p.cfg.Targets() {
		if t.Server.IsPush() {
			continue // it reports in to the push service
		}
		q.Add(t.Server.ID, t.Interval, p.now(), events.TaskGrace)
	}
	p.queueCanary(&canary)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		// Every window whose time to publish has come; after a restart,
		// the ones due within TaskGrace too, which the stream's
		// de-duplication drops if another replica published them.
		for {
			k, ok := nextWindow(&q, &canary)
			if !ok || p.now().Before(windowStart(k).Add(-scheduleLead)) {
				break
			}
			p.publishWindow(ctx, live, &q, &canary, k)
		}
		if k, ok := nextWindow(&q, &canary); ok {
			timer.Reset(max(0, windowStart(k).Add(-scheduleLead).Sub(p.now())))
		}
	}
}

// nextWindow is the window of the earliest check or canary queued.
func nextWindow(queues ...*schedule.Queue) (k int64, ok bool) {
	var due []time.Time
	for _, q := range queues {
		if next, ok := q.Next(); ok {
			due = append(due, next)
		}
	}
	if len(due) == 0 {
		return 0, false
	}
	return windowOf(slices.MinFunc(due, time.Time.Compare)), true
}

// publishWindow takes window k's checks from q, gives each a location, adds
// the canary for every live location if it falls due in the window, and
// publishes them.
func (p *Prober) publishWindow(ctx context.Context, live liveSet, q, canary *schedule.Queue, k int64) {
	// A bounded wait: a replica that gave up early sees a different set,
	// which costs at worst a location twice in a row, never a check.
	sctx, cancel := context.WithTimeout(ctx, scheduleLead/2)
	if err := live.Settled(sctx, judged(k)); err != nil && ctx.Err() == nil {
		p.log.Debug("choosing locations from the heartbeats heard so far", "err", err)
	}
	cancel()
	liveAt := func(due time.Time) []string { return live.At(judged(windowOf(due))) }
	start := windowStart(k)
	items := q.PopDue(start.Add(window-1), func(it schedule.Item) string {
		prev := it.Prev
		if prev == "" {
			prev = schedule.Previous(it.Key, it.Slot, it.Interval, it.Offset, liveAt)
		}
		return schedule.Choose(it.Key, it.Slot, liveAt(it.Due), prev)
	})
	canaries := canaryItems(canary.PopDue(start.Add(window-1), nil), liveAt)
	items = append(items, canaries...)
	published := true
	for part, ws := range windowMessages(start, items, p.opts.Location) {
		err := p.bus.Publish(ctx, events.New(events.ScheduleID(k, part), p.source, start.Add(-scheduleLead), ws))
		if err != nil && ctx.Err() == nil {
			published = false
			p.log.Warn("could not publish a window of checks; the next slot of each will", "window", start, "checks", len(ws.Checks), "err", err)
		}
	}
	for _, c := range canaries {
		if published && (c.Location == p.opts.Location || c.Location == "") {
			p.scheduledCanary(ctx, c)
		}
	}
}

// canaryItems are the canary's slots due, each for every location live
// then: every replica gives the same, as it gives every check the same
// location. With none live yet, the one for this prober's own location.
func canaryItems(due []schedule.Item, liveAt func(time.Time) []string) []schedule.Item {
	var out []schedule.Item
	for _, c := range due {
		locs := liveAt(c.Due)
		if len(locs) == 0 {
			out = append(out, c) // Location "": this prober's own
		}
		for _, l := range locs {
			c.Location = l
			out = append(out, c)
		}
	}
	return out
}

// windowMessages are the messages of one window's checks: one, unless the
// fleet has more than events.MaxScheduleChecks due in it. The checks are
// split in the same order by every replica, so that each server is in the
// same part whichever replica's part is stored. A check given to nobody
// (no location was live yet: this prober has just started) is given to
// self.
func windowMessages(start time.Time, items []schedule.Item, self string) []*events.ProbeSchedule {
	slices.SortFunc(items, func(a, b schedule.Item) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Location, b.Location))
	})
	var out []*events.ProbeSchedule
	for len(items) > 0 {
		n := min(len(items), events.MaxScheduleChecks)
		ws := &events.ProbeSchedule{Start: start, WindowMS: window.Milliseconds(), Checks: make([]events.ScheduledCheck, 0, n)}
		at := map[string]int{}
		for _, it := range items[:n] {
			loc := it.Location
			if loc == "" {
				loc = self
			}
			i, ok := at[loc]
			if !ok {
				i = len(ws.Locations)
				at[loc] = i
				ws.Locations = append(ws.Locations, loc)
			}
			ws.Checks = append(ws.Checks, events.ScheduledCheck{
				Server: it.Key, Location: i, Slot: it.Slot, DueMS: ceilMS(it.Due.Sub(start)),
			})
		}
		out = append(out, ws)
		items = items[n:]
	}
	return out
}

// ceilMS is d in whole milliseconds, rounded up: a check never runs before
// it falls due.
func ceilMS(d time.Duration) int64 { return int64((d + time.Millisecond - 1) / time.Millisecond) }
