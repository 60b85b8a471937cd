package prober

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/check"
)

// windowAhead is how long before it begins a window is taken up: a
// scheduler publishes one scheduleLead ahead, and its clock may run a
// little ahead of this prober's. A window further ahead waits its turn in
// the stream, rather than hold a worker.
const windowAhead = 5 * time.Second

// scheduleConsumerName is the durable consumer of a location's windows.
func scheduleConsumerName(location string) string { return "prober-" + location + "-schedule" }

// takeWindows runs this location's checks of every window. A window is
// acknowledged once each of its checks for this location has run and its
// result is stored: a prober that dies first leaves the window to the
// location's next prober, which runs what is not past.
func (p *Prober) takeWindows(ctx context.Context) error {
	longest := p.longestTimeout()
	// A window is in hand from shortly before it begins until its last
	// check ends: enough workers that the windows of that span are all in
	// hand at once, none waiting behind another's slow check.
	span := windowAhead + window + longest
	return p.bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamSchedule,
		Name:    scheduleConsumerName(p.opts.Location),
		Filter:  []string{events.SubjectProbeSchedule},
		Workers: min(int(span/window)+2, 512),
		AckWait: span + settle + 10*time.Second,
		// A location new to the stream starts with the windows that may
		// still hold a check not past, not the stream's whole history.
		Since:   events.TaskGrace,
		Metrics: p.m, Log: p.log,
	}, func(hctx context.Context, ev events.Event) error { return p.handleWindow(ctx, hctx, ev) })
}

// longestTimeout is the longest any check of the config may take.
func (p *Prober) longestTimeout() time.Duration {
	longest := p.cfg.Checks.Timeout.D()
	for _, t := range p.cfg.Targets() {
		longest = max(longest, t.Timeout)
	}
	return longest
}

// job is one check of a window, for this location.
type job struct {
	id   string
	ran  ranCheck // how it is remembered once run; zero: not remembered
	task *events.ProbeTask
	spec check.Spec
}

// handleWindow runs this location's checks of one window, each when it
// falls due. run is the prober's context: when it ends, checks not yet
// begun are left to the location's next prober.
func (p *Prober) handleWindow(run, ctx context.Context, ev events.Event) error {
	ws, ok := ev.Data.(*events.ProbeSchedule)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on the schedule subject", ev.Type))
	}
	now := p.now()
	switch ahead := ws.Start.Sub(now); {
	case ahead > events.TaskGrace:
		return bus.Permanent(fmt.Errorf("a window beginning in %s: no scheduler publishes one so early", ahead.Round(time.Second)))
	case ahead > windowAhead:
		return bus.Later(ahead - windowAhead)
	}
	mine := slices.Index(ws.Locations, p.opts.Location)
	if mine < 0 {
		return nil // nothing for this location
	}
	var jobs []job
	var unknown []string
	for _, c := range ws.Checks {
		if c.Location != mine {
			continue
		}
		task := &events.ProbeTask{Server: c.Server, Location: p.opts.Location, Slot: c.Slot, Due: ws.Due(c), Purpose: events.PurposeScheduled}
		if c.Server == events.CanaryServer {
			if every := p.canaryEvery(); every == 0 || task.Due.Add(every).After(now) {
				// Answered, or refused without a watchdog: never skipped.
				task.Purpose = events.PurposeCanary
				jobs = append(jobs, job{id: events.CanaryTaskID(c.Slot, p.opts.Location), task: task})
			}
			continue
		}
		spec, ok := p.spec(task)
		if !ok {
			unknown = append(unknown, c.Server)
			continue
		}
		tg, _ := p.cfg.Target(c.Server)
		if task.Due.Add(tg.Interval).Before(now) {
			continue // past: the next slot has replaced it
		}
		// The config's own string: what is remembered of a check that ran
		// allocates nothing of its own.
		ran := ranCheck{server: tg.Server.ID, slot: c.Slot}
		if p.ran.has(ran) {
			continue // this window came back, and this check had run
		}
		jobs = append(jobs, job{id: events.TaskID(c.Server, c.Slot), ran: ran, task: task, spec: spec})
	}
	slices.SortFunc(jobs, func(a, b job) int { return a.task.Due.Compare(b.task.Due) })
	if err := p.runAll(run, ctx, jobs); err != nil {
		return err
	}
	if len(unknown) > 0 {
		// The others have run: only the window is set aside, to say so.
		return bus.Permanent(fmt.Errorf("a window with checks of %s, not servers of this prober's config in service and checked", listed(unknown, 5)))
	}
	return nil
}

// startBeat is how checks of a window are started: on a beat, all those
// that fell due since the last one at once. A machine that wakes once for
// a few checks spends about half the CPU per check of one that wakes for
// each (docs/benchmarks.md), for a check that starts at most this late.
const startBeat = 50 * time.Millisecond

// onBeat is the first beat at or after t.
func onBeat(t time.Time) time.Time {
	if b := t.Truncate(startBeat); !b.Equal(t) {
		return b.Add(startBeat)
	}
	return t // already on a beat
}

// runAll runs each job when it falls due and a slot is free, and waits
// for them all. It stops starting jobs when the prober stops, or when the
// window has been in hand so long that JetStream is about to deliver it
// again: the window is then handled again, and what has not run, runs.
func (p *Prober) runAll(run, ctx context.Context, jobs []job) error {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed []error
	)
	started := 0
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for _, j := range jobs {
		if d := onBeat(j.task.Due).Sub(p.now()); d > 0 {
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-timer.C:
			case <-run.Done():
			case <-ctx.Done():
			}
		}
		slot := false
		if run.Err() == nil && ctx.Err() == nil {
			select {
			case p.slots <- struct{}{}:
				slot = true
			case <-run.Done():
			case <-ctx.Done():
			}
		}
		if run.Err() != nil || ctx.Err() != nil {
			if slot {
				<-p.slots
			}
			break
		}
		started++
		wg.Go(func() {
			err := p.runJob(ctx, j)
			<-p.slots // a stored result is waited for without a check slot
			if done, ok := bus.AckWhenChannel(err); ok {
				select {
				case err = <-done:
				case <-ctx.Done():
					err = fmt.Errorf("the result of %s was not stored within the window's ack wait", j.id)
				}
			}
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
				return
			}
			if j.ran.server != "" {
				p.ran.add(j.ran, p.now())
			}
		})
	}
	wg.Wait()
	switch left := len(jobs) - started; {
	case left > 0 && run.Err() != nil:
		// Stopping: the location's next prober takes the window up
		// again, after this one has let go of it.
		return bus.Later(time.Second)
	case left > 0:
		return fmt.Errorf("%d checks of the window not begun in time: %w", left, ctx.Err())
	}
	return errors.Join(failed...)
}

// runJob makes a window's check, or answers its canary.
func (p *Prober) runJob(ctx context.Context, j job) error {
	if j.task.Purpose == events.PurposeCanary {
		return p.answerCanary(ctx, j.id, j.task)
	}
	return p.run(ctx, j.id, j.task, j.spec)
}

// listed is up to n of names, and how many more there are.
func listed(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// ranChecks remembers the checks of windows this prober has run and
// published, for as long as a window may come back to it (a result that
// could not be published, a window held past its ack wait), or another
// window hold the same check: the window handled again runs only the
// checks that had not run.
type ranChecks struct {
	mu     sync.Mutex
	at     map[ranCheck]int64 // when it ran, in Unix seconds
	pruned int                // the size after the last pruning
}

// ranCheck is a server's check of one slot.
type ranCheck struct {
	server string
	slot   int64
}

// ranKept is how long a check is remembered: over twice a window's ack
// wait with the default timeouts.
const ranKept = 2 * time.Minute

func (r *ranChecks) has(c ranCheck) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.at[c]
	return ok
}

func (r *ranChecks) add(c ranCheck, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = map[ranCheck]int64{}
	}
	r.at[c] = now.Unix()
	// Pruned whenever it has doubled: a few passes over the map each
	// ranKept, whatever the rate of checks.
	if len(r.at) > 2*max(r.pruned, 1024) {
		for k, t := range r.at {
			if now.Unix()-t > int64(ranKept/time.Second) {
				delete(r.at, k)
			}
		}
		r.pruned = len(r.at)
	}
}
