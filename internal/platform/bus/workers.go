package bus

import (
	"context"
	"sync"
	"time"
)

// workers hand deliveries to the goroutines that handle them. Without a
// key they share one queue, and a message waits until a worker is free.
// With a key each worker has a queue of its own, which receive appends to
// without waiting and the worker empties a batch at a time: a slow key no
// longer holds up the others, and a busy worker takes many messages for
// one wake-up. JetStream's MaxAckPending bounds what the queues hold.
type workers struct {
	key    func(subject string) string
	shared chan delivery
	queues []*queue
	wg     sync.WaitGroup
	after  sync.WaitGroup // see handlerContexts.after
}

func startWorkers(ctx context.Context, c Consumer, handle func(*handlerContexts, delivery)) *workers {
	w := &workers{key: c.Key}
	if c.Key == nil {
		w.shared = make(chan delivery)
		for range c.Workers {
			w.wg.Go(func() {
				hc := newHandlerContexts(ctx, c.AckWait, &w.after)
				defer hc.release()
				for d := range w.shared {
					handle(hc, d)
				}
			})
		}
		return w
	}
	w.queues = make([]*queue, c.Workers)
	for i := range w.queues {
		q := &queue{wake: make(chan struct{}, 1)}
		w.queues[i] = q
		w.wg.Go(func() {
			hc := newHandlerContexts(ctx, c.AckWait, &w.after)
			defer hc.release()
			var spare []delivery
			for {
				batch, ok := q.take(spare)
				if !ok {
					return
				}
				for i := range batch {
					handle(hc, batch[i])
					batch[i] = delivery{} // let the message go
				}
				spare = batch
			}
		})
	}
	return w
}

func (w *workers) put(d delivery) {
	if w.key == nil {
		w.shared <- d
		return
	}
	w.queues[keyIndex(w.key(d.subject()), len(w.queues))].put(d)
}

// stop lets the workers finish what they hold, and waits for them and for
// the fates they left waiting.
func (w *workers) stop() {
	defer w.after.Wait()
	if w.key == nil {
		close(w.shared)
	}
	for _, q := range w.queues {
		q.close()
	}
	w.wg.Wait()
}

// queue is one keyed worker's messages, in the order they arrived.
type queue struct {
	mu     sync.Mutex
	items  []delivery
	closed bool
	wake   chan struct{} // holds a token once there is something to take
}

func (q *queue) put(d delivery) {
	q.mu.Lock()
	q.items = append(q.items, d)
	first := len(q.items) == 1
	q.mu.Unlock()
	if first {
		q.signal()
	}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default: // a token is there already
	}
}

// take waits for messages and returns all there are, leaving spare (its
// length reset) in their place so that the two slices take turns. It
// returns false once the queue is closed and empty.
func (q *queue) take(spare []delivery) ([]delivery, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			batch := q.items
			q.items = spare[:0]
			q.mu.Unlock()
			return batch, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// handlerContexts gives one worker's handlers their contexts. Each ends
// between 18/20 and 19/20 of AckWait after the message's clock started,
// before JetStream would deliver it again; none ends with the service's
// context, so that work in flight at shutdown finishes within that bound.
// Messages whose clocks started close together, as a batch's do, share a
// context: a worker does not make a context and a timer per message.
type handlerContexts struct {
	after    *sync.WaitGroup // fates waiting for what handlers handed on (AckWhen)
	parent   context.Context
	ackWait  time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

func newHandlerContexts(ctx context.Context, ackWait time.Duration, after *sync.WaitGroup) *handlerContexts {
	return &handlerContexts{parent: context.WithoutCancel(ctx), ackWait: ackWait, after: after}
}

// get returns the context for a message whose clock started at start.
func (hc *handlerContexts) get(start time.Time) context.Context {
	latest := start.Add(hc.ackWait * 19 / 20)
	earliest := latest.Add(-hc.ackWait / 20)
	if hc.ctx == nil || hc.deadline.After(latest) || hc.deadline.Before(earliest) || hc.ctx.Err() != nil {
		hc.release()
		hc.ctx, hc.cancel = context.WithDeadline(hc.parent, latest)
		hc.deadline = latest
	}
	return hc.ctx
}

func (hc *handlerContexts) release() {
	if hc.cancel != nil {
		hc.cancel()
	}
}

// keyIndex is FNV-1a of key, modulo n, without allocating.
func keyIndex(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
