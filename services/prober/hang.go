package prober

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/check"
)

// watchHang says so on the bus when a scheduled check is still waiting for
// its answer after the server's hang_after: the verifier then asks other
// locations at once, rather than after the whole timeout. The check goes
// on and its own result follows. The returned stop ends the watch, and
// waits for a report already on its way, so that it goes out before the
// check's result.
func (p *Prober) watchHang(ctx context.Context, id string, task *events.ProbeTask, spec check.Spec, start time.Time) (stop func()) {
	tg, ok := p.cfg.Target(task.Server)
	if !ok || task.Purpose != events.PurposeScheduled || tg.HangAfter <= 0 || tg.HangAfter >= spec.Timeout {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	t := time.AfterFunc(tg.HangAfter, func() {
		defer wg.Done()
		res := &events.ProbeResult{
			Server: task.Server, Location: p.opts.Location, Check: spec.URL, Task: id,
			Purpose: task.Purpose, Started: start, LatencyMS: float64(tg.HangAfter.Microseconds()) / 1000,
			Reason: fmt.Sprintf("no answer after %s", tg.HangAfter), Unanswered: true,
		}
		p.m.CheckUnanswered(p.opts.Location, p.role(task.Server))
		if err := p.bus.Publish(ctx, events.New(id+"/unanswered", p.source, start.Add(tg.HangAfter), res)); err != nil {
			// The check's own result still decides, a timeout later.
			p.log.Warn("could not say a check went unanswered", "server", task.Server, "err", err)
		}
	})
	return func() {
		if t.Stop() {
			wg.Done() // it never ran
		}
		wg.Wait()
	}
}

// answeredLate reports whether r is the answer, at last, of a scheduled
// check that watchHang said went unanswered: the verifier is asking other
// locations meanwhile, and this answer may end that at once.
func (p *Prober) answeredLate(r *events.ProbeResult) bool {
	tg, ok := p.cfg.Target(r.Server)
	if !ok || r.Purpose != events.PurposeScheduled || tg.HangAfter <= 0 || tg.HangAfter >= tg.Timeout {
		return false
	}
	return r.LatencyMS >= float64(tg.HangAfter.Microseconds())/1000
}
