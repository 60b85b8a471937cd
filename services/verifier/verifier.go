// Package verifier is the false-alarm filter: it judges every probe result,
// keeps each server's state in a key-value bucket, asks other locations to
// check again before believing a failure, and opens and resolves incidents.
// A restarted verifier carries on from the bucket where the last one stopped.
package verifier

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/maintenance"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// Deps are what a verifier needs from outside, as every service.
type Deps = platform.Deps

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
	// How often open incidents are looked at for servers back: see sweep.go.
	sweepEvery time.Duration

	canary jetstream.KeyValue // the canary's stages, see canary.go; nil without a watchdog
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
	deps = deps.WithDefaults()
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
	v.usage, v.storeEvery, v.sweepEvery = deps.Bus.Usage, time.Minute, DefaultSweepEvery
	for _, o := range opts {
		o(v)
	}
	return v
}

// Run judges results until ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	lkv, err := v.deps.Bus.KV(ctx, events.BucketLocations)
	if err != nil {
		return err
	}
	live, err := locations.Watch(ctx, lkv, v.deps.Now, v.cfg.Locations)
	if err != nil {
		return err
	}
	st, err := v.openStores(ctx)
	if err != nil {
		return err
	}
	incidents := st.incidents.KV
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
	if err := v.openCanary(ctx); err != nil {
		return err
	}
	if err := v.preload(ctx, st.servers); err != nil {
		return err
	}
	if err := v.markNotInService(ctx, st); err != nil {
		return err
	}
	if err := v.releaseRemoved(ctx, st); err != nil {
		return err
	}
	v.deps.Metrics.OpenIncidents(func(ctx context.Context) (int, error) { return countOpen(ctx, incidents) })
	// The looks at the store and at open incidents end with Run.
	var wg sync.WaitGroup
	lctx, stop := context.WithCancel(ctx)
	defer wg.Wait()
	defer stop()
	wg.Go(func() { v.watchStore(lctx, incidents, v.storeEvery) })
	wg.Go(func() { v.sweepLoop(lctx, st) })
	return v.deps.Bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamResults,
		Name:    "verifier",
		Filter:  []string{events.SubjectProbeResults}, // push reports too: see events.SubjectPushReports
		Workers: v.workers,
		Key:     events.ResultServer, // one server's results in order, whichever location
		// A prober's batch of successes is taken apart, each result
		// judged as if it had come alone, in order with the server's others.
		Batched: events.IsResultBatch, Split: events.Results,
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
	servers, boxes, incidents bus.Records
}

func (v *Verifier) openStores(ctx context.Context) (stores, error) {
	var st stores
	for _, b := range []struct {
		name string
		to   *bus.Records
	}{{events.BucketServers, &st.servers}, {events.BucketBoxes, &st.boxes}, {events.BucketIncidents, &st.incidents}} {
		kv, err := v.deps.Bus.KV(ctx, b.name)
		if err != nil {
			return st, err
		}
		*b.to = bus.Records{Bus: v.deps.Bus, KV: kv, Log: v.log}
	}
	return st, nil
}

// handle decides, records the decision with its events, then publishes them.
// Recording first means a decision is never half carried out: if publishing
// fails, the events wait in the record and go out when the server's next
// result (or this one, redelivered) is handled. Every id is derived from the
// state, so publishing twice stores once.
func (v *Verifier) handle(ctx context.Context, st stores, live *locations.Live, ev events.Event) error {
	var r *events.ProbeResult
	switch d := ev.Data.(type) {
	case *events.ProbeResult:
		r = d
	case *events.PushReport:
		r = pushResult(ev.ID, d)
	default:
		return bus.Permanent(fmt.Errorf("a %s event on a results subject", ev.Type))
	}
	if r.Server == events.CanaryServer {
		return v.judgeCanary(ctx, ev, r)
	}
	target, ok := v.cfg.Target(r.Server)
	if !ok {
		v.log.Info("result for a server no longer in the config; ignored", "server", r.Server)
		return nil
	}
	// A push server is believed only from the push service, and a checked
	// one only from the config's locations.
	switch push := target.Server.IsPush(); {
	case push && ev.Type != events.TypePushReport:
		return bus.Permanent(fmt.Errorf("a probe result for %q, which reports in: nobody was asked to check it", r.Server))
	case !push && ev.Type == events.TypePushReport:
		return bus.Permanent(fmt.Errorf("a push report for %q, which is checked and does not report in", r.Server))
	case !push && !slices.Contains(v.cfg.Locations, r.Location):
		return bus.Permanent(fmt.Errorf("a result from %q, which is not one of the config's locations", r.Location))
	}
	if ahead := r.Started.Sub(v.deps.Now()); ahead > MaxSkew {
		// Taken as the newest, it would make every real result stale.
		return bus.Permanent(fmt.Errorf("a result taken %s ahead of this verifier's clock, more than the %s allowed", ahead.Round(time.Second), MaxSkew))
	}
	log := v.log.With("server", r.Server)

	c, ok := v.cached(r.Server)
	if !ok {
		rec, rev, err := v.load(ctx, st.servers, r.Server)
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
			return errUnmarked
		}
	}
	if judge.Stale(rec.Server, r) {
		return nil // redelivered or overtaken: already reflected
	}
	policy := v.policy
	// Answers may take two check timeouts (a busy location), and then some.
	policy.RoundTimeout = 2*target.Timeout + 10*time.Second
	if target.Server.IsPush() {
		policy = pushPolicy(policy)
	}
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
	decided := record{Server: next, Outbox: bus.Outbox{Pending: out}, BoxDirty: len(fx.Changes) > 0, Leave: leave, Flap: flap}
	if rec, rev, err = v.commit(ctx, st, target, decided, rev); err != nil {
		return err // the redelivery finds the work in the record
	}
	v.logEffects(log, fx)
	return nil
}

// outgoing turns a decision into the events to publish, in order.
func (v *Verifier) outgoing(fx judge.Effects, round *judge.Round, r *events.ProbeResult, target config.Target) ([]bus.Outgoing, error) {
	now := v.deps.Now()
	var evs []events.Event
	var ttl time.Duration // a re-check not taken by the next check is of no use
	if fx.Recheck != "" {
		ttl = max(target.Interval, time.Second)
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
	out := make([]bus.Outgoing, 0, len(evs))
	for _, ev := range evs {
		keep := time.Duration(0)
		if ev.Type == events.TypeProbeTask {
			keep = ttl
		}
		o, err := bus.Hold(ev, keep)
		if err != nil {
			return nil, err
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
