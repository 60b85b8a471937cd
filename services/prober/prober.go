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
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/internal/config"
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
	// RootCAs, when set, are the roots trusted by https checks instead of the system's.
	RootCAs *x509.CertPool
}

// Deps are what a prober needs from outside.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	Now func() time.Time
}

// Prober is one location's prober and scheduler.
type Prober struct {
	cfg    *config.Config
	opts   Options
	bus    *bus.Bus
	log    *slog.Logger
	now    func() time.Time
	checks *check.Runner
	source string
}

// New returns a prober for opts.Location.
func New(cfg *config.Config, opts Options, deps Deps) (*Prober, error) {
	if !slices.Contains(cfg.Locations, opts.Location) {
		return nil, fmt.Errorf("location %q is not one of the config's locations %v", opts.Location, cfg.Locations)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Prober{
		cfg: cfg, opts: opts, bus: deps.Bus, now: deps.Now,
		log:    deps.Log.With("service", "prober", "location", opts.Location),
		checks: check.New(opts.RootCAs),
		source: "prober@" + opts.Location,
	}, nil
}

// Run schedules and runs checks until ctx ends.
func (p *Prober) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() { errs <- p.schedule(ctx) })
	wg.Go(func() { errs <- p.work(ctx) })
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
		Name:    "prober-" + p.opts.Location,
		Filter:  []string{events.SubjectProbeTask(p.opts.Location)},
		Workers: p.opts.Concurrency,
		AckWait: longest + 10*time.Second,
	}, p.handle)
}

func (p *Prober) handle(ctx context.Context, ev events.Event) error {
	task, ok := ev.Data.(*events.ProbeTask)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on a task subject", ev.Type))
	}
	start := p.now()
	out := p.checks.Run(ctx, check.Spec{URL: task.Check, Timeout: task.Timeout()})
	res := &events.ProbeResult{
		Server: task.Server, Location: p.opts.Location, Check: task.Check, Task: ev.ID,
		Purpose: task.Purpose, Started: start, LatencyMS: float64(out.Latency.Microseconds()) / 1000,
		OK: out.OK, Reason: out.Reason,
	}
	if !out.OK {
		p.log.Info("check failed", "server", task.Server, "reason", out.Reason, "purpose", task.Purpose)
	}
	// The result's id follows from the task's: a task run twice (a crash
	// before its ack) stores one result.
	return p.bus.Publish(ctx, events.New(ev.ID+"/result", p.source, start.Add(out.Latency), res))
}

// schedule publishes each server's task when its slot falls due.
func (p *Prober) schedule(ctx context.Context) error {
	targets := map[string]config.Target{}
	var q schedule.Queue
	for _, t := range p.cfg.Targets() {
		targets[t.Server.ID] = t
		q.Add(t.Server.ID, t.Interval, p.now(), events.TaskGrace)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		for _, it := range q.PopDue(p.now()) {
			t := targets[it.Key]
			task := &events.ProbeTask{
				Server: it.Key, Location: p.opts.Location, Check: t.Server.Check,
				TimeoutMS: t.Timeout.Milliseconds(), Slot: it.Slot, Due: it.Due, Purpose: events.PurposeScheduled,
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
