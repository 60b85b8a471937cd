// Package prober checks servers. Each prober runs at one location, takes the
// tasks addressed to that location, runs them and publishes what it saw.
// Every prober also runs the scheduler: it publishes one task per server per
// interval, and because the task id is "server/slot", JetStream keeps one
// task per slot however many schedulers publish it, so none needs to lead.
package prober

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/check"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// Options tune a prober.
type Options struct {
	Location string // where this prober runs; one of the config's locations
	// Concurrency caps the checks running at once, so that a large fleet
	// never means a socket per server at the same moment.
	Concurrency int
	// RootCAs, when set, are the roots trusted by TLS checks instead of the system's.
	RootCAs *x509.CertPool
	// Source, when set, is the address checks leave from (TCP and UDP).
	Source net.IP
	// Heartbeat is how often the prober announces its location, and
	// HeartbeatTTL how long one announcement keeps the location live;
	// defaults 5s and 15s.
	Heartbeat, HeartbeatTTL time.Duration
}

// Deps are what a prober needs from outside, as every service.
type Deps = platform.Deps

// Prober is one location's prober and scheduler.
type Prober struct {
	cfg    *config.Config
	opts   Options
	bus    *bus.Bus
	log    *slog.Logger
	now    func() time.Time
	checks *check.Runner
	source string
	m      *metrics.Metrics
	sent   *sender // every check's result goes through it: see results.go

	canary      jetstream.KeyValue // where the canary's stages are recorded; nil without a watchdog
	canarySince int64              // the first canary slot this scheduler issued
}

// New returns a prober for opts.Location.
func New(cfg *config.Config, opts Options, deps Deps) (*Prober, error) {
	if !slices.Contains(cfg.Locations, opts.Location) {
		return nil, fmt.Errorf("location %q is not one of the config's locations %v", opts.Location, cfg.Locations)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 5 * time.Second
	}
	if opts.HeartbeatTTL <= opts.Heartbeat {
		opts.HeartbeatTTL = 3 * opts.Heartbeat
	}
	deps = deps.WithDefaults()
	deps.Metrics.Expect("prober@"+opts.Location, consumerName(opts.Location))
	if opts.RootCAs == nil && cfg.Checks.CAFile != "" {
		pool, err := trusting(cfg.Checks.CAFile)
		if err != nil {
			return nil, err
		}
		opts.RootCAs = pool
	}
	p := &Prober{
		cfg: cfg, opts: opts, bus: deps.Bus, now: deps.Now,
		log:    deps.Log.With("service", "prober", "location", opts.Location),
		checks: check.New(opts.RootCAs, check.WithSource(opts.Source)),
		source: "prober@" + opts.Location,
		m:      deps.Metrics,
	}
	p.sent = newSender(deps.Bus, opts.Location, p.source, p.log, deps.Now, p.answeredLate)
	return p, nil
}

// trusting is the system's roots and the CA in file.
func trusting(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("checks.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("checks.ca_file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// Run announces the location, schedules and runs checks until ctx ends.
func (p *Prober) Run(ctx context.Context) error {
	kv, err := p.bus.KV(ctx, events.BucketLocations)
	if err != nil {
		return err
	}
	live, err := locations.Watch(ctx, kv, p.now, p.cfg.Locations)
	if err != nil {
		return err
	}
	if err := p.openCanary(ctx); err != nil {
		return err
	}
	hb := events.Heartbeat{Location: p.opts.Location, Instance: instanceID(), Since: p.now(), TTLMS: p.opts.HeartbeatTTL.Milliseconds()}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { errs <- locations.Announce(ctx, kv, hb, p.opts.Heartbeat, p.log) })
	wg.Go(func() { errs <- p.schedule(ctx, live) })
	wg.Go(func() { p.sent.run(ctx) })
	wg.Go(func() {
		errs <- p.work(ctx)
		p.sent.wait() // the batches of the tasks it finished
	})
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// work takes this location's tasks and runs them.
func (p *Prober) work(ctx context.Context) error {
	longest := p.cfg.Checks.Timeout.D()
	for _, t := range p.cfg.Targets() {
		longest = max(longest, t.Timeout)
	}
	return p.bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamTasks,
		Name:    consumerName(p.opts.Location),
		Filter:  []string{events.SubjectProbeTask(p.opts.Location)},
		Workers: p.opts.Concurrency,
		AckWait: longest + 10*time.Second,
		Metrics: p.m, Log: p.log,
	}, p.handle)
}

// consumerName is the durable consumer of a location's tasks.
func consumerName(location string) string { return "prober-" + location }

func (p *Prober) handle(ctx context.Context, ev events.Event) error {
	task, ok := ev.Data.(*events.ProbeTask)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on a task subject", ev.Type))
	}
	if task.Location != p.opts.Location {
		return bus.Permanent(fmt.Errorf("a task for %q reached the prober at %q", task.Location, p.opts.Location))
	}
	if task.Purpose == events.PurposeCanary {
		return p.answerCanary(ctx, ev, task)
	}
	spec, ok := p.spec(task)
	if !ok {
		return bus.Permanent(fmt.Errorf("a task for %q, not a server of this prober's config in service and checked", task.Server))
	}
	start := p.now()
	stop := p.watchHang(ctx, ev, task, spec, start)
	out := p.checks.Run(ctx, spec)
	stop()
	res := &events.ProbeResult{
		Server: task.Server, Location: p.opts.Location, Check: spec.URL, Task: ev.ID,
		Purpose: task.Purpose, Correlation: task.Correlation, Started: start,
		LatencyMS: float64(out.Latency.Microseconds()) / 1000, OK: out.OK,
		Reason: events.Clip(out.Reason, events.MaxReason), Warning: events.Clip(out.Warning, events.MaxReason),
	}
	p.m.CheckRan(p.opts.Location, p.role(task.Server), reasonClass(out), out.Latency)
	if !out.OK {
		p.log.Info("check failed", "server", task.Server, "reason", out.Reason, "purpose", task.Purpose)
	}
	// The result's id follows from the task's: a task run twice (a crash
	// before its ack) stores one result.
	return p.sent.Send(ctx, events.New(ev.ID+"/result", p.source, start.Add(out.Latency), res))
}

// role is the role of a server's box, a label bounded by the config.
func (p *Prober) role(server string) string {
	if t, ok := p.cfg.Target(server); ok {
		return t.Box.Role
	}
	return ""
}

// reasonClass is a failed check's reason as a metric label; empty when
// the check passed.
func reasonClass(out check.Outcome) string {
	if out.OK {
		return ""
	}
	return metrics.ReasonClass(out.Reason)
}

// spec is the check a task asks for: the check of the server it names,
// from this prober's own config. Whatever else a task says (a URL, its
// options, a login's username) is not trusted: whoever can publish a task
// would make every location fetch any URL, and send a password wherever
// the task's username matched. The timeout is the config's alone: a longer
// one would let a forged task hold a check slot for an hour, a shorter one
// make a healthy server fail its check from this location.
func (p *Prober) spec(t *events.ProbeTask) (check.Spec, bool) {
	tg, ok := p.cfg.Target(t.Server)
	if !ok || !tg.Server.Serving() || tg.Server.IsPush() {
		return check.Spec{}, false // a push server reports in: there is nothing to check
	}
	srv := tg.Server
	s := check.Spec{
		URL: srv.Check, Timeout: tg.Timeout,
		ExpectStatus: srv.ExpectStatus, Keyword: srv.Keyword, CertWarnDays: srv.CertWarnDays, StartTLS: srv.StartTLS,
	}
	if l := srv.Login; l != nil {
		s.Username, s.Password = l.Username, l.Password.Reveal()
	}
	return s, true
}

// settle is how far before a slot falls due its live locations are judged:
// long enough for every replica to have heard every heartbeat by then.
const settle = 500 * time.Millisecond

// schedule publishes each server's task, when its slot falls due, to one of
// the live locations.
func (p *Prober) schedule(ctx context.Context, live *locations.Live) error {
	// Until the bucket is read, only this prober's own location is known live.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := live.WaitReady(wctx); err != nil && ctx.Err() == nil {
		p.log.Warn("locations not known yet; scheduling for this location only", "err", err)
	}
	cancel()
	targets := map[string]config.Target{}
	var q schedule.Queue
	for _, t := range p.cfg.Targets() {
		if t.Server.IsPush() {
			continue // it reports in to the push service
		}
		targets[t.Server.ID] = t
		q.Add(t.Server.ID, t.Interval, p.now(), events.TaskGrace)
	}
	p.queueCanary(&q)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		now := p.now()
		// Every replica asks which locations were live a moment before a
		// slot fell due, once it has heard every heartbeat written by then,
		// and so sees the same set.
		liveAt := func(due time.Time) []string { return live.At(due.Add(-settle)) }
		sctx, cancel := context.WithTimeout(ctx, 2*settle)
		if err := live.Settled(sctx, now.Add(-settle)); err != nil && ctx.Err() == nil {
			p.log.Debug("choosing locations from the heartbeats heard so far", "err", err)
		}
		cancel()
		for _, it := range q.PopDue(now, func(it schedule.Item) string {
			prev := it.Prev
			if prev == "" {
				prev = schedule.Previous(it.Key, it.Slot, it.Interval, it.Offset, liveAt)
			}
			return schedule.Choose(it.Key, it.Slot, liveAt(it.Due), prev)
		}) {
			if it.Key == events.CanaryServer {
				p.issueCanary(ctx, it)
				continue
			}
			t := targets[it.Key]
			loc := it.Location
			if loc == "" {
				// Nobody was live yet when the slot fell due: this prober
				// has just started, and checks it itself.
				loc = p.opts.Location
			}
			task := &events.ProbeTask{
				Server: it.Key, Location: loc, Check: t.Server.Check,
				TimeoutMS: t.Timeout.Milliseconds(), Slot: it.Slot, Due: it.Due, Purpose: events.PurposeScheduled,
				Options: t.Server.CheckOptions(),
			}
			id := fmt.Sprintf("%s/%d", it.Key, it.Slot)
			// A task nobody took within its interval is stale: the next slot replaces it.
			err := p.bus.Publish(ctx, events.New(id, p.source, it.Due, task), jetstream.WithMsgTTL(max(t.Interval, time.Second)))
			if err != nil && ctx.Err() == nil {
				p.log.Warn("could not publish a task; the next slot will", "server", it.Key, "err", err)
			}
		}
		if next, ok := q.Next(); ok {
			timer.Reset(max(0, next.Sub(p.now())))
		}
	}
}

// instanceID tells apart the probers of one location: the host, and a
// random part for several probers in one process or host.
func instanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "prober"
	}
	host = strings.NewReplacer(".", "-", "*", "-", ">", "-", " ", "-").Replace(host)
	return host + "-" + nuid.Next()
}
