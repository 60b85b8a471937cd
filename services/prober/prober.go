// Package prober checks servers. Each prober runs at one location, takes the
// checks given to that location, runs them and publishes what it saw.
// Every prober also runs the scheduler: shortly before each second it
// publishes one message holding every server's check due in that second,
// each given to a live location, and because the message's id names the
// second, JetStream keeps one whole message per second however many
// schedulers publish it, so none needs to lead. Re-checks and the canary
// come as tasks of their own, addressed to one location.
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
	// slots holds a token for each check running, tasks' and windows'
	// alike: at most Concurrency at once.
	slots chan struct{}
	ran   ranChecks // the checks of windows run here lately
	sent  *sender   // every check's result goes through it: see results.go

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
	deps.Metrics.Expect("prober@"+opts.Location, consumerName(opts.Location), scheduleConsumerName(opts.Location))
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
		slots:  make(chan struct{}, opts.Concurrency),
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
	errs := make(chan error, 4)
	wg.Go(func() { errs <- locations.Announce(ctx, kv, hb, p.opts.Heartbeat, p.log) })
	wg.Go(func() { errs <- p.schedule(ctx, live) })
	wg.Go(func() { p.sent.run(ctx) })
	var consumers sync.WaitGroup
	consumers.Go(func() { errs <- p.work(ctx) })
	consumers.Go(func() { errs <- p.takeWindows(ctx) })
	wg.Go(func() {
		consumers.Wait()
		p.sent.wait() // the batches of the checks they finished
	})
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// work takes this location's tasks (re-checks, on-demand checks and the
// canary) and runs them.
func (p *Prober) work(ctx context.Context) error {
	longest := p.longestTimeout()
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
		return p.answerCanary(ctx, ev.ID, task)
	}
	spec, ok := p.spec(task)
	if !ok {
		return bus.Permanent(fmt.Errorf("a task for %q, not a server of this prober's config in service and checked", task.Server))
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("no check slot free in time: %w", ctx.Err())
	}
	defer func() { <-p.slots }()
	return p.run(ctx, ev.ID, task, spec)
}

// run runs the check of one task, whose id is id, and publishes its
// result: the one way a check runs, whether its task came on its own or
// in a window. The caller holds one of the slots.
func (p *Prober) run(ctx context.Context, id string, task *events.ProbeTask, spec check.Spec) error {
	start := p.now()
	stop := p.watchHang(ctx, id, task, spec, start)
	out := p.checks.Run(ctx, spec)
	stop()
	res := &events.ProbeResult{
		Server: task.Server, Location: p.opts.Location, Check: spec.URL, Task: id,
		Purpose: task.Purpose, Correlation: task.Correlation, Started: start,
		LatencyMS: float64(out.Latency.Microseconds()) / 1000, OK: out.OK,
		Reason: events.Clip(out.Reason, events.MaxReason), Warning: events.Clip(out.Warning, events.MaxReason),
	}
	p.m.CheckRan(p.opts.Location, p.role(task.Server), reasonClass(out), out.Latency)
	if !out.OK {
		p.log.Info("check failed", "server", task.Server, "reason", out.Reason, "purpose", task.Purpose)
	}
	return p.publishResult(ctx, id, start.Add(out.Latency), res)
}

// publishResult publishes the result of the task whose id is id.
func (p *Prober) publishResult(ctx context.Context, id string, at time.Time, res *events.ProbeResult) error {
	// The result's id follows from the task's: a task run twice (a crash
	// before its ack) stores one result.
	return p.sent.Send(ctx, events.New(id+"/result", p.source, at, res))
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
