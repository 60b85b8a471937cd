// Package verifier is the false-alarm filter: it judges every probe result,
// keeps each server's state in a key-value bucket, asks other locations to
// check again before believing a failure, and opens and resolves incidents.
// A restarted verifier carries on from the bucket where the last one stopped.
package verifier

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/maintenance"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// Deps are what a verifier needs from outside.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	Now func() time.Time
	// Metrics, when nil, are made on a registry of the verifier's own.
	Metrics *metrics.Metrics
}

// Verifier judges results.
type Verifier struct {
	cfg     *config.Config
	deps    Deps
	log     *slog.Logger
	policy  judge.Policy
	workers int // results for one server stay in order
	ackWait time.Duration

	// cache holds each server's record as last read or written, so that a
	// result need not read the bucket; a failed write drops the entry.
	mu    sync.Mutex
	cache map[string]cached
	// loaded: every record in the bucket was read at start, so a server
	// not in the cache has none, unless a write for it failed since
	// (doubt): another writer may have made one, read it.
	loaded bool
	doubt  map[string]bool

	groups sync.Map // datacentre → *sync.Mutex, see groupLock

	windows *maintenance.Windows // from the config and started at run time

	// How the store is looked at, and how often: see store.go.
	usage      func(context.Context) ([]bus.StreamUsage, error)
	storeEvery time.Duration
}

type cached struct {
	rec record
	rev uint64
}

// Option adjusts a verifier.
type Option func(*Verifier)

// WithStoreWatch sets how the store's usage is read and how often (by
// default the bus's own, every minute).
func WithStoreWatch(usage func(context.Context) ([]bus.StreamUsage, error), every time.Duration) Option {
	return func(v *Verifier) { v.usage, v.storeEvery = usage, every }
}

// WithAckWait sets how long a result may be in hand before JetStream gives
// it to another verifier (default 30s): after a crash, that long passes
// before the results it held are judged again.
func WithAckWait(d time.Duration) Option { return func(v *Verifier) { v.ackWait = d } }

// New returns a verifier for the fleet in cfg.
func New(cfg *config.Config, deps Deps, opts ...Option) *Verifier {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New()
	}
	deps.Metrics.Expect("verifier", "verifier")
	v := &Verifier{
		cfg: cfg, deps: deps,
		log: deps.Log.With("service", "verifier"),
		// A failure is confirmed when quorum of the re-checks fail as well.
		policy: judge.Policy{
			Ask: cfg.Checks.Verify.Locations, Quorum: cfg.Checks.Verify.Quorum, RecoverAfter: cfg.Checks.RecoverAfter,
			FlapChanges: cfg.Checks.Flapping.Limit(), FlapWindow: cfg.Checks.Flapping.Window.D(), FlapSettle: cfg.Checks.Flapping.Settle.D(),
		},
		workers: 16,
		cache:   map[string]cached{},
		doubt:   map[string]bool{},
	}
	v.usage, v.storeEvery = deps.Bus.Usage, time.Minute
	for _, o := range opts {
		o(v)
	}
	return v
}

func (v *Verifier) cached(server string) (cached, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[server]
	if !ok && v.loaded && !v.doubt[server] {
		return cached{}, true // never recorded
	}
	return c, ok
}

func (v *Verifier) remember(server string, rec record, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev == 0 {
		delete(v.cache, server)
		v.doubt[server] = true
		return
	}
	v.cache[server] = cached{rec, rev}
	delete(v.doubt, server)
}

// preloadStall is how long reading the server states may pause before
// the read is given up as stalled.
const preloadStall = 30 * time.Second

// preload reads every server's record in one pass, so that the first
// result of each after a start need not read the bucket: tens of thousands
// of reads, one per server, otherwise.
func (v *Verifier) preload(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read server states: %w", err)
	}
	defer w.Stop()
	all := map[string]cached{}
	// A connection lost in the middle leaves the watcher silent rather
	// than closed: waiting is bounded, by ctx and by a pause in what
	// arrives, so that the verifier fails and is started again instead of
	// hanging.
	stalled := time.NewTimer(preloadStall)
	defer stalled.Stop()
	for done := false; !done; {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				done = true // all read
				break
			}
			var rec record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				v.log.Error("stored state unreadable; starting this server afresh", "server", e.Key(), "err", err)
				rec = record{}
			}
			all[e.Key()] = cached{rec, e.Revision()}
			stalled.Reset(preloadStall)
		case <-stalled.C:
			return fmt.Errorf("read server states: nothing arrived for %v after %d records", preloadStall, len(all))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cache, v.loaded = all, true
	return nil
}

// record is what the bucket holds per server: the judge's state (which
// holds the events.ServerRecord other services read) and the events
// decided but perhaps not yet published. It is one value under one key so
// that writing a decision and the work it leaves to do is one atomic
// write; readers decode events.ServerRecord and never see the rest.
type record struct {
	judge.Server
	Pending []outgoing `json:"pending,omitempty"`
	// BoxDirty says the server's state changed and its box is still to be
	// judged again.
	BoxDirty bool `json:"box_dirty,omitempty"`
	// Leave: the server is back and its incident is still to hear of it.
	Leave *leaving `json:"leave,omitempty"`
	// Flap: the server was marked flapping and its incident is still to
	// tell staff.
	Flap *leaving `json:"flap,omitempty"`
}

// outgoing is one event ready to publish.
type outgoing struct {
	Subject string          `json:"subject"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	TTLMS   int64           `json:"ttl_ms,omitempty"`
}

// Run judges results until ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	kv, err := v.deps.Bus.KV(ctx, events.BucketServers)
	if err != nil {
		return err
	}
	lkv, err := v.deps.Bus.KV(ctx, events.BucketLocations)
	if err != nil {
		return err
	}
	live, err := locations.Watch(ctx, lkv, v.deps.Now, v.cfg.Locations)
	if err != nil {
		return err
	}
	boxes, err := v.deps.Bus.KV(ctx, events.BucketBoxes)
	if err != nil {
		return err
	}
	incidents, err := v.deps.Bus.KV(ctx, events.BucketIncidents)
	if err != nil {
		return err
	}
	st := stores{servers: kv, boxes: boxes, incidents: incidents}
	ms, err := maintenance.Open(ctx, v.deps.Bus)
	if err != nil {
		return err
	}
	if err := ms.Sync(ctx, v.cfg, v.deps.Now(), v.log); err != nil {
		return err
	}
	if v.windows, err = ms.Watch(ctx); err != nil {
		return err
	}
	if err := v.preload(ctx, kv); err != nil {
		return err
	}
	if err := v.markNotInService(ctx, st); err != nil {
		return err
	}
	if err := v.releaseRemoved(ctx, st); err != nil {
		return err
	}
	v.deps.Metrics.OpenIncidents(func(ctx context.Context) (int, error) { return countOpen(ctx, incidents) })
	go v.watchStore(ctx, incidents, v.storeEvery)
	return v.deps.Bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamResults,
		Name:    "verifier",
		Filter:  []string{events.SubjectProbeResults},
		Workers: v.workers,
		Key:     events.ResultServer, // one server's results in order, whichever location
		// Each server's record is kept in memory and its results judged
		// in order: a second verifier stands by rather than share.
		Exclusive: true,
		AckWait:   v.ackWait,
		// A verifier deployed afresh need not judge a day of old results.
		Since:   10 * time.Minute,
		Metrics: v.deps.Metrics, Log: v.log,
	}, func(ctx context.Context, ev events.Event) error { return v.handle(ctx, st, live, ev) })
}

// stores are the buckets the verifier keeps its state in.
type stores struct {
	servers, boxes, incidents jetstream.KeyValue
}

// handle decides, records the decision with its events, then publishes them.
// Recording first means a decision is never half carried out: if publishing
// fails, the events wait in the record and go out when the server's next
// result (or this one, redelivered) is handled. Every id is derived from the
// state, so publishing twice stores once.
func (v *Verifier) handle(ctx context.Context, st stores, live *locations.Live, ev events.Event) error {
	r, ok := ev.Data.(*events.ProbeResult)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on a results subject", ev.Type))
	}
	target, ok := v.cfg.Target(r.Server)
	if !ok {
		v.log.Info("result for a server no longer in the config; ignored", "server", r.Server)
		return nil
	}
	if !slices.Contains(v.cfg.Locations, r.Location) {
		return bus.Permanent(fmt.Errorf("a result from %q, which is not one of the config's locations", r.Location))
	}
	if ahead := r.Started.Sub(v.deps.Now()); ahead > MaxSkew {
		// Taken as the newest, it would make every real result stale.
		return bus.Permanent(fmt.Errorf("a result taken %s ahead of this verifier's clock, more than the %s allowed", ahead.Round(time.Second), MaxSkew))
	}
	log := v.log.With("server", r.Server)

	c, ok := v.cached(r.Server)
	if !ok {
		rec, rev, err := v.load(ctx, st.servers, r.Server, log)
		if err != nil {
			return err
		}
		c = cached{rec, rev}
	}
	err := v.judge(ctx, st, live, r, target, c, log)
	if err != nil {
		v.remember(r.Server, record{}, 0) // read it afresh next time
	}
	return err
}

func (v *Verifier) judge(ctx context.Context, st stores, live *locations.Live, r *events.ProbeResult, target config.Target, c cached, log *slog.Logger) (err error) {
	rec, rev := c.rec, c.rev
	defer func() {
		if err == nil {
			v.remember(r.Server, rec, rev)
		}
	}()
	if rec.unfinished() {
		if rec, rev, err = v.finish(ctx, st, target, rec, rev); err != nil {
			return err
		}
		if rev == 0 {
			return errors.New("carried out what the record held, but could not say so; retrying")
		}
	}
	if judge.Stale(rec.Server, r) {
		return nil // redelivered or overtaken: already reflected
	}
	policy := v.policy
	// Answers may take two check timeouts (a busy location), and then some.
	policy.RoundTimeout = 2*target.Timeout + 10*time.Second
	facts := judge.Facts{Box: target.Box.ID, BoxName: target.Box.Name, Check: target.Server.Check, Maintenance: v.windows.At(r.Server, r.Started), Nonce: nonce()}
	next, fx := judge.Apply(rec.Server, r, facts, policy)
	if fx.Recheck != "" {
		next.Round.Locations, next.Round.Fallback = v.recheckLocations(r.Location, fx.RecheckCount, live.List())
	}
	opened := fx.Opened
	if opened != nil {
		// Staff must know at once whether the service is still available.
		a := &opened.Servers[0]
		if a.BoxState, a.StillUp, err = v.boxWith(ctx, st.servers, target.Box, r.Server, next.State); err != nil {
			return err
		}
		// The server joins an incident before its record says so: joining
		// again for the same outage, after a crash, finds the same one.
		id, err := v.join(ctx, st.incidents, target, *a, opened.Incident, opened.Opened, fx.Flapping)
		if err != nil {
			return err
		}
		next.Incident = id
		for i := range fx.Changes {
			if fx.Changes[i].Incident == opened.Incident {
				fx.Changes[i].Incident = id
			}
		}
		fx.Opened = nil // the incident's own record announces it
	}
	var leave, flap *leaving
	if res := fx.Resolved; res != nil {
		leave, fx.Resolved = &leaving{Incident: res.Incident, At: res.Resolved}, nil
	}
	if fx.Flapping && next.Incident != "" {
		flap = &leaving{Incident: next.Incident, At: r.Started}
	}
	out, err := v.outgoing(fx, next.Round, r, target)
	if err != nil {
		return bus.Permanent(err)
	}
	if len(out) == 0 && len(fx.Changes) == 0 && leave == nil && flap == nil && next.Same(rec.Server) {
		// Nothing but the time of the newest result: not worth a write.
		// After a restart an older time is read back, and the results
		// between are judged again, changing nothing again.
		rec.Server = next
		return nil
	}
	if rec, rev, err = v.commit(ctx, st, target, record{Server: next, Pending: out, BoxDirty: len(fx.Changes) > 0, Leave: leave, Flap: flap}, rev); err != nil {
		return err // the redelivery finds the work in the record
	}
	v.logEffects(log, fx)
	return nil
}

// commit records a decision with the events it implies and whether its box
// must be judged again, then carries them out. Recording first means a
// decision is never half carried out: after a crash, the work waits in the
// record for the server's next result.
func (v *Verifier) commit(ctx context.Context, st stores, target config.Target, rec record, rev uint64) (record, uint64, error) {
	rev, err := store(ctx, st.servers, target.Server.ID, rec, rev)
	if err != nil {
		return rec, 0, err
	}
	// Known at once to the judgement of its box, in this process: see
	// boxServers.
	v.remember(target.Server.ID, rec, rev)
	if !rec.unfinished() {
		return rec, rev, nil
	}
	return v.finish(ctx, st, target, rec, rev)
}

// unfinished reports whether the record holds work not yet carried out.
func (rec *record) unfinished() bool {
	return len(rec.Pending) > 0 || rec.BoxDirty || rec.Leave != nil || rec.Flap != nil
}

// finish carries out what a stored record holds and marks it done. If the
// mark cannot be written the work is done again later, harmlessly, and the
// revision returned is 0: read the record afresh.
func (v *Verifier) finish(ctx context.Context, st stores, target config.Target, rec record, rev uint64) (record, uint64, error) {
	if err := v.carryOut(ctx, st, target, rec); err != nil {
		return rec, 0, err
	}
	rec.Pending, rec.BoxDirty, rec.Leave, rec.Flap = nil, false, nil, nil
	rev, err := store(ctx, st.servers, target.Server.ID, rec, rev)
	if err != nil {
		v.log.Warn("published events stay marked pending", "server", target.Server.ID, "err", err)
		return rec, 0, nil
	}
	return rec, rev, nil
}

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
				if known.rec, known.rev, err = v.load(ctx, st.servers, srv.ID, v.log); err != nil {
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
			ev := events.New(fmt.Sprintf("%s/state/%d-%d", srv.ID, rec.Seq, now.UnixMilli()), "verifier", now, c)
			data, err := ev.Marshal()
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
			rec.Pending = append(rec.Pending, outgoing{Subject: ev.Subject(), ID: ev.ID, Data: data})
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
		rev, err := store(ctx, st.servers, id, rec, c.rev)
		if err != nil {
			return err
		}
		v.remember(id, rec, rev)
		v.log.Info("a server no longer in the config left its incident", "server", id, "incident", incident)
	}
	return nil
}

// carryOut publishes a record's pending events, tells its incident the
// server is back, and, if its state changed, judges its box again.
func (v *Verifier) carryOut(ctx context.Context, st stores, target config.Target, rec record) error {
	if err := v.publish(ctx, rec.Pending); err != nil {
		return err
	}
	if rec.Flap != nil {
		if _, err := v.updateIncident(ctx, st.incidents, rec.Flap.Incident, func(inc *incidentRecord) (events.Payload, bool) {
			if inc.ID == "" {
				return nil, false
			}
			return inc.Flap(target.Server.ID, rec.Flap.At), true
		}); err != nil {
			return err
		}
	}
	if rec.Leave != nil {
		if err := v.leave(ctx, st.incidents, st.servers, target, *rec.Leave); err != nil {
			return err
		}
	}
	if rec.BoxDirty {
		return v.judgeBox(ctx, st, target.Box, rec.Since)
	}
	return nil
}

// boxWith judges a box as it is with one of its servers in a new state,
// from the stored records of the others.
func (v *Verifier) boxWith(ctx context.Context, kv jetstream.KeyValue, box *config.Box, server string, state events.ServerState) (events.BoxState, []string, error) {
	states, err := v.boxServers(ctx, kv, box)
	if err != nil {
		return "", nil, err
	}
	states[server] = state
	bs, up, _ := judge.BoxState(states)
	return bs, up, nil
}

// boxServers is the stored state of each server of a box in service.
func (v *Verifier) boxServers(ctx context.Context, kv jetstream.KeyValue, box *config.Box) (map[string]events.ServerState, error) {
	states := map[string]events.ServerState{}
	for _, s := range box.Servers {
		if !s.Serving() {
			continue
		}
		rec, rev, err := v.load(ctx, kv, s.ID, v.log)
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

// known is the record of a server as this process last wrote or read it,
// if it holds one.
func (v *Verifier) known(server string) (cached, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[server]
	return c, ok
}

// boxRecord is what the boxes bucket holds per box: the record other
// services read, and beside it the count that box event ids derive from
// and the change decided but perhaps not yet published.
type boxRecord struct {
	events.BoxRecord
	Seq     int64      `json:"seq"`
	Pending []outgoing `json:"pending,omitempty"`
}

// judgeBox works a box's state out again from its servers' records, and
// records and announces a change. Two servers of a box may change at once,
// in different workers: the box record is written with compare-and-set,
// and a writer that lost the race reads every server again and retries.
func (v *Verifier) judgeBox(ctx context.Context, st stores, box *config.Box, at time.Time) error {
	kv, boxes := st.servers, st.boxes
	for attempt := 0; ; attempt++ {
		var br boxRecord
		rev := uint64(0)
		e, err := boxes.Get(ctx, box.ID)
		switch {
		case err == nil:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &br); err != nil {
				br = boxRecord{}
			}
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("read state of box %s: %w", box.ID, err)
		}
		hadPending := len(br.Pending) > 0
		if hadPending {
			// A change recorded before a crash, not yet announced.
			if err := v.publish(ctx, br.Pending); err != nil {
				return err
			}
			br.Pending = nil
		}
		states, err := v.boxServers(ctx, kv, box)
		if err != nil {
			return err
		}
		state, up, down := judge.BoxState(states)
		var change []outgoing
		if state != br.State {
			c := &events.BoxStateChanged{Box: box.ID, From: br.State, To: state, Since: at, Up: up, Down: down}
			br.Seq++
			ev := events.New(fmt.Sprintf("%s/state/%d-%d", box.ID, br.Seq, at.UnixMilli()), "verifier", at, c)
			b, err := ev.Marshal()
			if err != nil {
				return err
			}
			change = []outgoing{{Subject: ev.Subject(), ID: ev.ID, Data: b}}
			br.State, br.Since, br.Pending = state, at, change
		} else if !hadPending {
			// Nothing to record; its open incident may not know yet, if
			// telling it failed last time.
			return v.boxChanged(ctx, st.incidents, box, events.BoxStatus{Box: box.ID, State: state, Up: up}, at)
		}
		b, err := json.Marshal(br)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev, err = boxes.Create(ctx, box.ID, b)
		} else {
			rev, err = boxes.Update(ctx, box.ID, b, rev)
		}
		if bus.IsConflict(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return fmt.Errorf("record state of box %s: %w", box.ID, err)
		}
		status := events.BoxStatus{Box: box.ID, State: state, Up: up}
		if len(change) == 0 {
			return v.boxChanged(ctx, st.incidents, box, status, at)
		}
		if err := v.publish(ctx, change); err != nil {
			return err // the next judgement of the box publishes it
		}
		if err := v.boxChanged(ctx, st.incidents, box, status, at); err != nil {
			return err // judged again with the server's next result
		}
		if state == events.BoxDown {
			v.log.Warn("box down: no server of it answers", "box", box.ID, "down", down)
		} else {
			v.log.Info("box state changed", "box", box.ID, "to", state, "down", down)
		}
		br.Pending = nil
		if b, err = json.Marshal(br); err == nil {
			_, _ = boxes.Update(ctx, box.ID, b, rev) // best effort: publishing again is harmless
		}
		return nil
	}
}

// outgoing turns a decision into the events to publish, in order.
func (v *Verifier) outgoing(fx judge.Effects, round *judge.Round, r *events.ProbeResult, target config.Target) ([]outgoing, error) {
	now := v.deps.Now()
	var evs []events.Event
	var ttl int64
	if fx.Recheck != "" {
		ttl = max(target.Interval, time.Second).Milliseconds()
		for i, loc := range round.Locations {
			task := &events.ProbeTask{
				Server: r.Server, Location: loc, Check: target.Server.Check,
				TimeoutMS: target.Timeout.Milliseconds(), Due: now, Purpose: events.PurposeRecheck,
				Correlation: fx.Recheck, Options: target.Server.CheckOptions(),
			}
			evs = append(evs, events.New(judge.TaskID(fx.Recheck, loc, i), "verifier", now, task))
		}
	}
	for _, c := range fx.Changes {
		evs = append(evs, events.New(c.ID, "verifier", c.Since, &c.ServerStateChanged))
	}
	if fa := fx.FalseAlarm; fa != nil {
		evs = append(evs, events.New(fx.FalseAlarmID, "verifier", now, fa))
	}
	if w := fx.Warned; w != nil {
		evs = append(evs, events.New(w.Incident+"/opened", "verifier", w.Opened, w))
	}
	if w := fx.Unwarned; w != nil {
		evs = append(evs, events.New(w.Incident+"/resolved", "verifier", w.Resolved, w))
	}
	out := make([]outgoing, 0, len(evs))
	for _, ev := range evs {
		b, err := ev.Marshal()
		if err != nil {
			return nil, err
		}
		o := outgoing{Subject: ev.Subject(), ID: ev.ID, Data: b}
		if ev.Type == events.TypeProbeTask {
			o.TTLMS = ttl
		}
		out = append(out, o)
	}
	return out, nil
}

// MaxSkew is how far ahead of the verifier's clock a result may say it
// was taken: locations keep time by NTP, within a second of each other.
const MaxSkew = time.Minute

// nonce is a few random letters for a verification's id: what answers it
// must name, and nobody can work out beforehand.
func nonce() string {
	b := make([]byte, 5)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// recheckLocations spreads n re-checks over the live locations other than
// the one that saw the failure, one each, in a random order so that no
// location (the one whose name sorts first, say) takes every re-check;
// where there are too few, the same location checks again, and fallback
// says so for the incident.
func (v *Verifier) recheckLocations(failedAt string, n int, live []string) (locs []string, fallback bool) {
	others := slices.DeleteFunc(slices.Clone(live), func(l string) bool { return l == failedAt })
	mrand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	for i := range n {
		if i < len(others) {
			locs = append(locs, others[i])
		} else {
			locs, fallback = append(locs, failedAt), true
		}
	}
	return locs, fallback
}

func (v *Verifier) publish(ctx context.Context, out []outgoing) error {
	for _, o := range out {
		m := nats.NewMsg(o.Subject)
		m.Data = o.Data
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(o.ID)}
		if o.TTLMS > 0 {
			opts = append(opts, jetstream.WithMsgTTL(time.Duration(o.TTLMS)*time.Millisecond))
		}
		if _, err := v.deps.Bus.JS.PublishMsg(ctx, m, opts...); err != nil {
			return fmt.Errorf("publish %s: %w", o.ID, err)
		}
	}
	return nil
}

func (v *Verifier) logEffects(log *slog.Logger, fx judge.Effects) {
	if fx.Recheck != "" {
		v.deps.Metrics.VerificationStarted()
	}
	if fa := fx.FalseAlarm; fa != nil {
		v.deps.Metrics.FalseAlarm()
		log.Info("false alarm: not confirmed from elsewhere", "reason", fa.Reason, "seen_from", fa.Locations, "why", fa.Why)
	}
	for _, c := range fx.Changes {
		if c.From == events.StateSuspect && c.To == events.StateDown {
			v.deps.Metrics.VerificationConfirmed()
		}
		log.Info("server state changed", "from", c.From, "to", c.To, "reason", c.Reason, "incident", c.Incident)
	}
}

// load reads a server's record and the revision to update it at; 0 for a
// server never seen.
func (v *Verifier) load(ctx context.Context, kv jetstream.KeyValue, server string, log *slog.Logger) (record, uint64, error) {
	e, err := kv.Get(ctx, server)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, nil
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("read state of %s: %w", server, err)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// A corrupt record must not stop judging: start this server afresh.
		log.Error("stored state unreadable; starting this server afresh", "err", err)
		return record{}, e.Revision(), nil
	}
	return rec, e.Revision(), nil
}

// store writes the record only if nobody wrote it since rev; a lost race is
// retried by redelivery, against the newer record.
func store(ctx context.Context, kv jetstream.KeyValue, server string, rec record, rev uint64) (uint64, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	if rev == 0 {
		rev, err = kv.Create(ctx, server, b)
	} else {
		rev, err = kv.Update(ctx, server, b, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("record state of %s: %w", server, err)
	}
	return rev, nil
}
