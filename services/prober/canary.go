package prober

import (
	"context"
	"fmt"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/canary"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// The canary, for the watchdog: each interval the window that the
// canary's slot falls in holds a canary check for every live location,
// put there by the same loop that publishes every server's checks; each
// scheduler records that its own location's went out (so a scheduler that
// stops scheduling stops its canary), and the prober there answers it
// from the window, through the result stream of every check (so a prober
// that stops taking windows stops answering). The answer needs no network: the canary
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

// scheduledCanary records that this location's canary of a slot went out
// in a window.
func (p *Prober) scheduledCanary(ctx context.Context, it schedule.Item) {
	if p.canarySince == 0 {
		p.canarySince = it.Slot
	}
	err := canary.Record(ctx, p.canary, events.StageScheduled, p.opts.Location, events.CanaryStage{Slot: it.Slot, At: p.now(), Since: p.canarySince})
	if err != nil && ctx.Err() == nil {
		p.log.Warn("could not record the canary's window; the next slot will", "slot", it.Slot, "err", err)
	}
}

// answerCanary answers this location's canary of a slot, the task id of
// which is id: no other check is answered without being made. It comes in
// a window, as every scheduled check; a scheduler of an earlier version
// sent it as a task of its own.
func (p *Prober) answerCanary(ctx context.Context, id string, task *events.ProbeTask) error {
	slot, loc, ok := events.ParseCanaryTaskID(id)
	switch {
	case p.canaryEvery() == 0:
		return bus.Permanent(fmt.Errorf("a canary task, and no watchdog in this prober's config"))
	case !ok || task.Server != events.CanaryServer || loc != p.opts.Location || slot != task.Slot:
		return bus.Permanent(fmt.Errorf("a canary task %q for %q that no scheduler of this location issued", id, task.Server))
	}
	now := p.now()
	res := &events.ProbeResult{
		Server: events.CanaryServer, Location: loc, Check: events.CanaryCheck, Task: id,
		Purpose: events.PurposeCanary, Started: now, OK: true,
	}
	if err := p.publishResult(ctx, id, now, res); err != nil {
		return err
	}
	return canary.Record(ctx, p.canary, events.StageProbed, loc, events.CanaryStage{Slot: slot, At: now})
}
