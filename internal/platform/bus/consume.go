package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Handler handles one decoded event. Returning nil acknowledges it; an error
// marked Permanent sets it aside in the dead-letter stream; any other error
// has it delivered again after a back-off, or after the provider's
// Retry-After when the error holds a ProviderError that gives one. A
// handler must be idempotent: a message may arrive more than once.
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

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent or is a ProviderError that retrying cannot help.
func IsPermanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	refused := false
	walk(err, func(e error) {
		if pe, ok := e.(*ProviderError); ok && !pe.Retry {
			refused = true
		}
	})
	return refused
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
	// Batched and Split, when both set, take apart a message that holds
	// many events: each message on a subject Batched reports is decoded
	// as it arrives, Split gives its events, and each goes to the worker
	// of its own subject's key, in order with the messages of that key
	// that come on their own. The message's fate waits for all of them:
	// see split.go. A message Split refuses is set aside whole.
	Batched func(subject string) bool
	Split   func(events.Event) ([]events.Event, error)
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
	// Exclusive: one instance at a time takes the consumer's messages;
	// others run beside it, standing by. One that stops hands over at
	// once; one that dies is replaced within Bus.TakeOver. For a service
	// that keeps state in memory or needs every message of a key in order,
	// as the verifier does: two instances sharing the messages would undo
	// both.
	Exclusive bool
	// Metrics, when set, count the messages handled and report the
	// consumer's lag and whether it is set up.
	Metrics *metrics.Metrics
	// Log, when set, is the service's own logger, so that what the loop
	// logs says which service (and prober location) it is about.
	Log *slog.Logger
}

// exclusiveGroup is the one priority group of an exclusive consumer.
const exclusiveGroup = "active"

// pinIDHeader carries, on each message of an exclusive consumer, the id
// JetStream pinned the consumer to: the active instance's.
const pinIDHeader = "Nats-Pin-Id"

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
// cannot be set up at the start, unless ctx ended meanwhile; if the
// consumer later stops delivering (it was deleted, the cluster lost it)
// Consume sets it up again rather than leave a service running that does
// nothing.
func (b *Bus) Consume(ctx context.Context, c Consumer, h Handler) error {
	c.defaults()
	cons, err := b.consumer(ctx, c)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: nothing was taken, nothing is lost
		}
		return err
	}
	c.Metrics.ConsumerUp(cons)
	log := b.log
	if c.Log != nil {
		log = c.Log
	}
	log = log.With("consumer", c.Name)
	acked := newAckedHere(2 * maxAckPending(c))
	w := startWorkers(ctx, c, func(hc *handlerContexts, d delivery) { b.handle(hc, c, log, d, h, acked) })
	var active atomic.Bool // this instance was given messages
	pin := ""              // JetStream's id for this instance's pulls; put runs on one goroutine
	put := func(d delivery) {
		active.Store(true)
		if c.Exclusive {
			if p := d.m.Headers().Get(pinIDHeader); p != "" && p != pin {
				pin = p
				c.Metrics.Pinned(c.Stream, c.Name, p)
			}
		}
		if c.Batched != nil && c.Split != nil && c.Batched(d.m.Subject()) {
			for _, item := range split(c, d) {
				w.put(item)
			}
			return
		}
		w.put(d)
	}
	for attempt := 0; ; attempt++ {
		if err := b.receive(ctx, cons, c, put, log); err != nil {
			c.Metrics.ConsumerDown(c.Stream, c.Name)
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
		// On failure the old handle is tried again, and fails again
		// until the consumer can be set up: never a nil one.
		if next, err := b.consumer(ctx, c); err != nil {
			log.Error("consumer cannot be set up again; retrying", "err", err)
		} else {
			cons = next
			c.Metrics.ConsumerUp(cons)
		}
	}
	w.stop()
	if c.Exclusive && active.Load() {
		b.handOver(c, log)
	}
	return nil
}

// handOver lets a standing-by instance of an exclusive consumer take over
// at once, now that this one has finished what it had, rather than after
// ExclusiveTTL: a deploy restarts instances one by one.
func (b *Bus) handOver(c Consumer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s, err := b.JS.Stream(ctx, c.Stream)
	if err == nil {
		err = s.UnpinConsumer(ctx, c.Name, exclusiveGroup)
	}
	if err != nil {
		log.Info("could not hand the consumer over; another instance takes it over in time", "within", b.takeOver(), "err", err)
	}
}

// delivery is a message and when it reached us: JetStream's AckWait runs
// from then, not from when a worker takes it up. A message that holds
// many events is delivered as one delivery per event, each with the event
// (ev) and what they share (batch); one that could not be taken apart, as
// one with the reason (err).
type delivery struct {
	m     jetstream.Msg
	at    time.Time
	ev    *events.Event
	err   error
	batch *batch
	item  int
}

// subject is the subject a delivery's key is taken from: its event's own.
func (d *delivery) subject() string {
	if d.ev != nil {
		return d.ev.Subject()
	}
	return d.m.Subject()
}

// consumer creates the durable consumer, or updates the one there.
func (b *Bus) consumer(ctx context.Context, c Consumer) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:        c.Name,
		FilterSubjects: c.Filter,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     -1, // never drop: a message ends acknowledged or dead-lettered
		MaxAckPending:  maxAckPending(c),
	}
	if len(c.Filter) == 1 {
		// One filter goes in the subject of the request, where a NATS
		// user's permissions can hold the consumer to it: a prober to its
		// own location's tasks.
		cfg.FilterSubject, cfg.FilterSubjects = c.Filter[0], nil
	}
	if c.Since > 0 {
		start := time.Now().Add(-c.Since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	if c.Exclusive {
		// JetStream moves the pin when the pinned instance has not asked
		// for messages for PinnedTTL: a live one asks every expiry (see
		// receive), well within it.
		cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = jetstream.PriorityPolicyPinned, []string{exclusiveGroup}, b.takeOver()
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

// maxAckPending is how many messages JetStream lets one consumer hold
// unacknowledged; it bounds what waits in the workers' queues. A message
// that holds many events counts once however many it holds (a prober's
// batch, up to events.MaxBatchResults), so a consumer that takes such
// messages holds fewer: 128 full batches are 64,000 results in memory, and
// far more than the workers need to stay busy.
func maxAckPending(c Consumer) int {
	if c.Split != nil {
		return max(128, c.Workers*4)
	}
	return max(1000, c.Workers*4)
}

// pullWindow is how many messages are asked for ahead of handling. Workers
// sharing one queue take the next message whenever one is free, so a few
// ahead keep them busy without hoarding what another instance could take.
// Keyed workers each have a queue of their own that takes whatever comes
// (MaxAckPending bounds it), so the window can be wide: JetStream sends in
// bigger bursts, and the client is far less likely to be caught by the
// race described at pullHeartbeat.
func pullWindow(c Consumer) int {
	if c.Key == nil {
		return max(c.Workers*2, 16)
	}
	return 4 * maxAckPending(c)
}

// pullHeartbeat is how often JetStream is asked to show it is alive while
// a pull request waits. The client asks for more messages only when one
// arrives, and skips asking while it is still sending its previous
// request: when every message it asked for arrives in that moment (a busy
// machine is enough), it has no request left on the server and nothing
// makes it send one, until two heartbeats are missed. With the default
// (15s) that stalled the verifier's drain for 30 seconds at a time; with
// this, for two.
const pullHeartbeat = time.Second

// receive hands messages to put until ctx ends (nil) or the consumer stops
// delivering (an error). put runs on the connection's delivery goroutine,
// one message at a time in the order JetStream sent them.
func (b *Bus) receive(ctx context.Context, cons jetstream.Consumer, c Consumer, put func(delivery), log *slog.Logger) error {
	var mu sync.Mutex
	var last error
	opts := []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(pullWindow(c))}
	if c.Exclusive {
		// Asking again well within the take-over time keeps the pin.
		expiry := max(time.Second, b.takeOver()*2/5)
		opts = append(opts, jetstream.PullPriorityGroup(exclusiveGroup), jetstream.PullExpiry(expiry), jetstream.PullHeartbeat(min(pullHeartbeat, expiry/2)))
	} else {
		opts = append(opts, jetstream.PullHeartbeat(pullHeartbeat))
	}
	opts = append(opts, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// Missed heartbeats and the like: Consume asks again by itself,
		// or stops and says why below.
		log.Warn("fetching messages", "err", err)
		mu.Lock()
		last = err
		mu.Unlock()
	}))
	cc, err := cons.Consume(func(m jetstream.Msg) { put(delivery{m: m, at: time.Now()}) }, opts...)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		if b.NC.IsConnected() {
			cc.Drain() // what has arrived is still handed over
		} else {
			// Draining would wait out the client's flush timeout on a
			// connection that is gone, and nothing handed over now could
			// be acknowledged: JetStream delivers it again.
			cc.Stop()
		}
		<-cc.Closed()
		return nil
	case <-cc.Closed():
		if ctx.Err() != nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if last == nil {
			return errors.New("message delivery stopped")
		}
		return fmt.Errorf("message delivery stopped: %w", last)
	}
}

// handle applies the ack policy, the one place that decides a message's fate.
func (b *Bus) handle(hc *handlerContexts, c Consumer, log *slog.Logger, d delivery, h Handler, acked *ackedHere) {
	if d.batch != nil {
		b.handleItem(hc, c, log, d, h)
		return
	}
	m := d.m
	seq, again := uint64(0), false
	if md, err := m.Metadata(); err == nil {
		seq, again = md.Sequence.Stream, md.NumDelivered > 1
	}
	if again && acked.has(seq) {
		// JetStream sent it again while the first copy waited in a queue
		// here past its ack wait; that one was handled and acknowledged.
		// Handling the copy too would only add work where there is too
		// much already.
		_ = m.Ack()
		return
	}
	// The handler must finish before JetStream gives the message to someone
	// else. A message that waited in our queue for a third of AckWait has
	// its clock restarted first.
	start := d.at
	if time.Since(start) > c.AckWait/3 {
		if err := m.InProgress(); err == nil {
			start = time.Now()
		}
	}
	hctx := hc.get(start)

	err := d.err
	if err == nil {
		var ev events.Event
		if ev, err = events.Decode(m.Subject(), m.Data()); err != nil {
			err = Permanent(err)
		} else {
			err = call(hctx, h, ev)
		}
	}
	if done, ok := isAckWhen(err); ok {
		// The worker goes on; the message's fate waits, within its
		// handler's time, for what the handler handed on.
		deadline, _ := hctx.Deadline()
		hc.after.Go(func() {
			err := await(done, deadline)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if b.decide(ctx, c, log, m, err) && time.Since(d.at) > c.AckWait/2 {
				acked.add(seq)
			}
		})
		return
	}
	// Only a message acknowledged late can have been sent again: what is
	// remembered costs nothing while handling keeps up.
	if b.decide(hctx, c, log, m, err) && time.Since(d.at) > c.AckWait/2 {
		acked.add(seq)
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
