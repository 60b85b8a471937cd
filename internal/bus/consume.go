package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Handler handles one decoded event. Returning nil acknowledges it; an error
// marked Permanent sets it aside in the dead-letter stream; any other error
// has it delivered again after a back-off. A handler must be idempotent: a
// message may arrive more than once.
type Handler func(ctx context.Context, ev events.Event) error

// Permanent marks an error that retrying cannot fix: a malformed event, a
// request the provider refuses for good.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// Consumer describes one durable consumer and how its messages are handled.
type Consumer struct {
	Stream string
	Name   string   // durable name; also names the dead-letter subject
	Filter []string // subjects to take from the stream
	// Workers handle messages concurrently. With Key set, messages with the
	// same key always go to the same worker, in order.
	Workers int
	Key     func(subject string) string
	// AckWait is how long a handler may take before JetStream delivers the
	// message again; the handler's context ends then too.
	AckWait time.Duration
	// Backoff bounds the delay before a failed message is tried again; it
	// doubles from Min up to Max with each delivery, with jitter.
	BackoffMin, BackoffMax time.Duration
	// Since, when set, starts a consumer that does not exist yet this long
	// ago in the stream rather than at its beginning: a service deployed
	// today need not act on last month's events. An existing consumer
	// carries on from where it is.
	Since time.Duration
}

func (c *Consumer) defaults() {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(time.Minute, c.BackoffMin)
	}
}

// Consume handles messages until ctx ends, then stops fetching, finishes the
// messages it holds, and returns nil. It returns an error when the consumer
// cannot be set up at the start; if the consumer later stops delivering (it
// was deleted, the cluster lost it) Consume sets it up again rather than
// leave a service running that does nothing.
func (b *Bus) Consume(ctx context.Context, c Consumer, h Handler) error {
	c.defaults()
	cons, err := b.consumer(ctx, c)
	if err != nil {
		return err
	}
	log := b.log.With("consumer", c.Name)
	queues := make([]chan delivery, c.Workers)
	shared := make(chan delivery)
	var wg sync.WaitGroup
	for i := range queues {
		q := shared
		if c.Key != nil {
			q = make(chan delivery, 4)
		}
		queues[i] = q
		wg.Go(func() {
			for d := range q {
				b.handle(ctx, c, log, d, h)
			}
		})
	}
	dispatch := func(d delivery) {
		q := shared
		if c.Key != nil {
			q = queues[keyIndex(c.Key(d.m.Subject()), len(queues))]
		}
		q <- d
	}
	for attempt := 0; ; attempt++ {
		if err := b.pull(ctx, cons, c, dispatch, log); err != nil {
			log.Error("consumer stopped delivering; setting it up again", "err", err)
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff(uint64(attempt+1), time.Second, 30*time.Second)):
		}
		if ctx.Err() != nil {
			break
		}
		if cons, err = b.consumer(ctx, c); err != nil {
			log.Error("consumer cannot be set up again; retrying", "err", err)
		}
	}
	if c.Key != nil {
		for _, q := range queues {
			close(q)
		}
	} else {
		close(shared)
	}
	wg.Wait()
	return nil
}

// delivery is a message and when it reached us: JetStream's AckWait runs
// from then, not from when a worker takes it up.
type delivery struct {
	m  jetstream.Msg
	at time.Time
}

// consumer creates the durable consumer, or updates the one there.
func (b *Bus) consumer(ctx context.Context, c Consumer) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: c.Filter,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     -1, // never drop: a message ends acknowledged or dead-lettered
		MaxAckPending:  max(1000, c.Workers*4),
	}
	if c.Since > 0 {
		start := time.Now().Add(-c.Since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := b.JS.CreateConsumer(ctx, c.Stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Where a consumer starts cannot change; the rest may.
		var existing jetstream.Consumer
		if existing, err = b.JS.Consumer(ctx, c.Stream, c.Name); err == nil {
			old := existing.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartTime, cfg.OptStartSeq = old.DeliverPolicy, old.OptStartTime, old.OptStartSeq
			cons, err = b.JS.UpdateConsumer(ctx, c.Stream, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", c.Name, c.Stream, err)
	}
	return cons, nil
}

// pull hands messages to dispatch until ctx ends (nil) or the consumer
// stops delivering (an error).
func (b *Bus) pull(ctx context.Context, cons jetstream.Consumer, c Consumer, dispatch func(delivery), log *slog.Logger) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(max(c.Workers*2, 16)))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	var last error
	for {
		m, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("message iterator closed: %w", errors.Join(last, err))
		}
		if err != nil {
			// Missed heartbeats and the like: the iterator recovers by
			// itself, or closes and says why above.
			log.Warn("fetching messages", "err", err)
			last = err
			continue
		}
		dispatch(delivery{m: m, at: time.Now()})
	}
}

func keyIndex(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// handle applies the ack policy, the one place that decides a message's fate.
func (b *Bus) handle(ctx context.Context, c Consumer, log *slog.Logger, d delivery, h Handler) {
	m := d.m
	// The handler must finish before JetStream gives the message to someone
	// else. A message that waited in our queue for a third of AckWait has
	// its clock restarted first.
	budget := c.AckWait - time.Since(d.at)
	if budget < c.AckWait*2/3 {
		if err := m.InProgress(); err == nil {
			budget = c.AckWait
		}
	}
	// In-flight work finishes after shutdown begins, bounded by that budget.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budget*19/20)
	defer cancel()

	ev, err := events.Decode(m.Subject(), m.Data())
	if err != nil {
		err = Permanent(err)
	} else {
		err = call(hctx, h, ev)
	}
	later, isLater := IsLater(err)
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; the message will be delivered again", "subject", m.Subject(), "err", err)
		}
	case isLater:
		_ = m.NakWithDelay(later) // a timer, not a failure
	case IsPermanent(err):
		if derr := b.deadLetter(hctx, c.Name, m, err); derr != nil {
			log.Warn("could not set a message aside; retrying it", "subject", m.Subject(), "reason", err, "err", derr)
			_ = m.NakWithDelay(c.BackoffMin)
			return
		}
		log.Warn("message set aside in the dead-letter stream", "subject", m.Subject(), "reason", err)
		_ = m.TermWithReason(truncate(firstLine(err.Error()), 200))
	default:
		n := uint64(1)
		if md, mdErr := m.Metadata(); mdErr == nil {
			n = md.NumDelivered
		}
		delay := backoff(n, c.BackoffMin, c.BackoffMax)
		log.Warn("handling failed; retry scheduled", "subject", m.Subject(), "attempt", n, "retry_in", delay.Round(time.Millisecond), "err", err)
		_ = m.NakWithDelay(delay)
	}
}

// call runs the handler, turning a panic into a permanent error: a handler
// that panics on a message would panic on every redelivery of it.
func call(ctx context.Context, h Handler, ev events.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Permanent(fmt.Errorf("handler panicked: %v\n%s", r, debug.Stack()))
		}
	}()
	return h(ctx, ev)
}

func (b *Bus) deadLetter(ctx context.Context, consumer string, m jetstream.Msg, reason error) error {
	md, err := m.Metadata()
	if err != nil {
		return err
	}
	dm := nats.NewMsg(events.SubjectDeadLetter(consumer))
	dm.Data = m.Data()
	dm.Header.Set(events.HeaderDeadReason, truncate(reason.Error(), 1000))
	dm.Header.Set(events.HeaderDeadSubject, m.Subject())
	dm.Header.Set(events.HeaderDeadStream, md.Stream)
	dm.Header.Set(events.HeaderDeadSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	dm.Header.Set(events.HeaderDeadConsumer, consumer)
	id := fmt.Sprintf("%s/%d/%s", md.Stream, md.Sequence.Stream, consumer)
	_, err = b.JS.PublishMsg(ctx, dm, jetstream.WithMsgID(id))
	return err
}

// backoff is the delay before delivery n+1: doubling from lo, capped at hi,
// with ±20% jitter so that a burst of failures does not retry in lockstep.
func backoff(n uint64, lo, hi time.Duration) time.Duration {
	d := lo
	for i := uint64(1); i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
