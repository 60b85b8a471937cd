package prober

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/canary"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// The canary, for the watchdog: each interval the scheduler of every
// location issues a canary task to its own location, from the same loop
// that publishes every server's windows (so a scheduler that stops
// scheduling stops its canary), and the prober there answers it through
// the work queue of the re-checks and the result stream of every check
// (so a prober that stops taking tasks stops answering). The answer needs no network: the canary
// proves that the pipeline carries work, not that a location can reach
// the internet, which the real checks of every server and the locations'
// heartbeats already tell. A target on the network would page the
// watchdog's switch for every hiccup between a location and that target,
// and on a cluster would need a listener every location can reach.

// canaryEvery is the canary's interval; 0 without a watchdog.
func (p *Prober) canaryEvery() time.Duration {
	if p.cfg.Watchdog == nil {
		return 0
	}
	return p.cfg.Watchdog.Every.D()
}

// openCanary opens the bucket the canary's stages are recorded in.
func (p *Prober) openCanary(ctx context.Context) error {
	if p.canaryEvery() == 0 {
		return nil
	}
	kv, err := p.bus.KV(ctx, events.BucketCanary)
	p.canary = kv
	return err
}

// queueCanary puts the canary in the scheduler's queue, as a server.
func (p *Prober) queueCanary(q *schedule.Queue) {
	if every := p.canaryEvery(); every > 0 {
		q.Add(events.CanaryServer, every, p.now(), min(every, events.TaskGrace))
	}
}

// issueCanary publishes this location's canary task of a slot and records
// that it did.
func (p *Prober) issueCanary(ctx context.Context, it schedule.Item) {
	every := p.canaryEvery()
	if p.canarySince == 0 {
		p.canarySince = it.Slot
	}
	loc := p.opts.Location
	task := &events.ProbeTask{
		Server: events.CanaryServer, Location: loc, Check: events.CanaryCheck,
		TimeoutMS: 1000, Slot: it.Slot, Due: it.Due, Purpose: events.PurposeCanary,
	}
	err := p.bus.Publish(ctx, events.New(events.CanaryTaskID(it.Slot, loc), p.source, it.Due, task), jetstream.WithMsgTTL(max(every, time.Second)))
	if err == nil {
		err = canary.Record(ctx, p.canary, events.StageScheduled, loc, events.CanaryStage{Slot: it.Slot, At: p.now(), Since: p.canarySince})
	}
	if err != nil && ctx.Err() == nil {
		p.log.Warn("could not issue the canary; the next slot will", "slot", it.Slot, "err", err)
	}
}

// answerCanary answers a canary task of this location, one its scheduler
// issued: no other task is answered without a check.
func (p *Prober) answerCanary(ctx context.Context, ev events.Event, task *events.ProbeTask) error {
	slot, loc, ok := events.ParseCanaryTaskID(ev.ID)
	switch {
	case p.canaryEvery() == 0:
		return bus.Permanent(fmt.Errorf("a canary task, and no watchdog in this prober's config"))
	case !ok || task.Server != events.CanaryServer || loc != p.opts.Location || slot != task.Slot:
		return bus.Permanent(fmt.Errorf("a canary task %q for %q that no scheduler of this location issued", ev.ID, task.Server))
	}
	now := p.now()
	res := &events.ProbeResult{
		Server: events.CanaryServer, Location: loc, Check: events.CanaryCheck, Task: ev.ID,
		Purpose: events.PurposeCanary, Started: now, OK: true,
	}
	if err := p.bus.Publish(ctx, events.New(ev.ID+"/result", p.source, now, res)); err != nil {
		return err
	}
	return canary.Record(ctx, p.canary, events.StageProbed, loc, events.CanaryStage{Slot: slot, At: now})
}
