package prober

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// A message costs the bus, and the verifier that takes it, far more than
// the few dozen bytes a successful check says, and nearly every check
// succeeds. So successes of scheduled checks wait, for flushEvery at most,
// to share one message (a batch, events.ProbeResultBatch) with the others
// of this location. What is urgent goes at once, on its own, as before: a
// failure, an unanswered check (hang.go), the answer to a re-check or to
// the canary, and a success that ends the wait for an unanswered check.
//
// A task is acknowledged once its result is stored, so that a prober that
// dies with results in hand runs their tasks again: the handler hands the
// result over and returns bus.AckWhen, and the check slot is free at once.

// flushEvery bounds how long a success waits for others.
const flushEvery = time.Second

// maxInFlight bounds the batches being stored at once: more wait.
const maxInFlight = 4

// Retrying a batch the bus refused: doubling from retryMin to retryMax.
const (
	retryMin       = 100 * time.Millisecond
	retryMax       = 5 * time.Second
	publishTimeout = 10 * time.Second
	// giveUpAfter is how long a batch is retried when none of its tasks
	// said how long it may wait.
	giveUpAfter = time.Minute
)

// sender sends one location's results.
type sender struct {
	bus      *bus.Bus
	location string
	source   string
	id       string // this process's part of every batch id
	log      *slog.Logger
	now      func() time.Time
	// urgent says whether a success must go at once all the same.
	urgent func(*events.ProbeResult) bool

	mu       sync.Mutex
	open     *gathering // successes waiting for the next batch; nil if none
	seq      uint64
	draining bool // shutting down: every success goes in a batch at once
	slots    chan struct{}
	inFlight sync.WaitGroup
}

// gathering is the successes of one batch in the making.
type gathering struct {
	results  []*events.ProbeResult
	size     int
	deadline time.Time      // the latest its tasks may wait for
	done     []chan<- error // one per result, told when it is stored or never will be
}

func newSender(b *bus.Bus, location, source string, log *slog.Logger, now func() time.Time, urgent func(*events.ProbeResult) bool) *sender {
	return &sender{
		bus: b, location: location, source: source, id: nuid.Next(), log: log, now: now, urgent: urgent,
		slots: make(chan struct{}, maxInFlight),
	}
}

// Send stores a check's result. What is urgent is published at once, and
// Send returns once it is stored. A success of a scheduled check joins the
// next batch, and Send returns bus.AckWhen: the task's message is
// acknowledged once the batch is stored, retried if it never is.
func (s *sender) Send(ctx context.Context, ev events.Event) error {
	r, ok := ev.Data.(*events.ProbeResult)
	if !ok || s.urgent(r) {
		return s.bus.Publish(ctx, ev)
	}
	it, ok := events.Item(r, r.Started)
	if !ok {
		return s.bus.Publish(ctx, ev)
	}
	size := it.Size()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(giveUpAfter)
	}
	done := make(chan error, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.open; g != nil && (len(g.results) >= events.MaxBatchResults || g.size+size > events.MaxBatchBytes) {
		s.cut()
	}
	if s.open == nil {
		s.open = &gathering{}
	}
	g := s.open
	g.results = append(g.results, r)
	g.size += size
	g.deadline = later(g.deadline, deadline)
	g.done = append(g.done, done)
	if s.draining || len(g.results) >= events.MaxBatchResults {
		s.cut()
	}
	return bus.AckWhen(done)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// run sends what was gathered every flushEvery until ctx ends; then it
// sends what is left, and every success from then on at once.
func (s *sender) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.draining = true
			s.cut()
			s.mu.Unlock()
			return
		case <-t.C:
			s.mu.Lock()
			s.cut()
			s.mu.Unlock()
		}
	}
}

// wait waits for every batch cut to be stored, or given up.
func (s *sender) wait() { s.inFlight.Wait() }

// cut makes what was gathered a batch and starts storing it. s.mu is held.
func (s *sender) cut() {
	g := s.open
	if g == nil {
		return
	}
	s.open = nil
	s.seq++
	start := g.results[0].Started
	for _, r := range g.results {
		if r.Started.Before(start) {
			start = r.Started
		}
	}
	b := &events.ProbeResultBatch{Location: s.location, Start: start, Items: make([]events.BatchedItem, 0, len(g.results))}
	for _, r := range g.results {
		it, _ := events.Item(r, start)
		b.Items = append(b.Items, it)
	}
	// The id is fixed here, with the content: a retry after an answer that
	// went missing is stored once.
	ev := events.New(fmt.Sprintf("%s/%s/%d", s.location, s.id, s.seq), s.source, s.now(), b)
	s.inFlight.Add(1)
	go s.store(ev, g)
}

// store publishes a batch until it is stored or its tasks can wait no
// longer, and tells each of them how it went.
func (s *sender) store(ev events.Event, g *gathering) {
	defer s.inFlight.Done()
	s.slots <- struct{}{}
	defer func() { <-s.slots }()
	if _, err := ev.Marshal(); err != nil {
		// Something of a result no batch may hold (it cannot happen with
		// results this prober made): each goes alone, as it would have.
		s.log.Error("a batch of results is not valid; sending them one by one", "batch", ev.ID, "err", err)
		for i, r := range g.results {
			ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
			g.done[i] <- s.bus.Publish(ctx, events.New(r.Task+"/result", s.source, r.Started.Add(time.Duration(r.LatencyMS*float64(time.Millisecond))), r))
			cancel()
		}
		return
	}
	var err error
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		err = s.bus.Publish(ctx, ev)
		cancel()
		if err == nil {
			break
		}
		wait := min(retryMin<<min(attempt, 10), retryMax)
		if time.Now().Add(wait).After(g.deadline) {
			// Each task is retried, and checks again: nothing is lost.
			s.log.Warn("could not store a batch of results; their tasks are run again", "results", len(g.results), "batch", ev.ID, "err", err)
			err = fmt.Errorf("batch %s not stored: %w", ev.ID, err)
			break
		}
		s.log.Warn("could not store a batch of results; retrying", "results", len(g.results), "batch", ev.ID, "retry_in", wait, "err", err)
		time.Sleep(wait)
	}
	for _, d := range g.done {
		d <- err
	}
}
