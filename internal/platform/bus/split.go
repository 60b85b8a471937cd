package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// A message that holds many events (a prober's batch of results) is taken
// apart as it arrives, and each event handled as if it had come alone, by
// the worker of its own key. The message has one fate all the same, decided
// by whichever of its events is handled last:
//   - every event handled, or set aside: Ack;
//   - an event set aside (Permanent) goes to the dead letters alone, with
//     its reason; the others are handled;
//   - any other failure: Nak, with the largest delay any event asked for.
//     Redelivered, every event of the message is handled again, those that
//     succeeded too: handlers are idempotent (the verifier's judge.Stale
//     finds a result already judged and does nothing), as they must be
//     for any redelivery.
//
// A message that cannot be decoded or taken apart is set aside whole.

// batch is what the events of one message share.
type batch struct {
	m jetstream.Msg

	mu   sync.Mutex
	at   time.Time // when JetStream's AckWait clock last started for the message
	left int       // events not yet handled
	// What the handled events asked for.
	failed     bool          // one must be tried again
	failure    error         // the first such failure, for the log
	retryAfter time.Duration // the longest delay a failure asked for
	waits      bool          // an event asked to wait (Later)
	later      time.Duration // the longest it asked for
}

// split takes a delivery apart into one delivery per event, or returns it
// with the reason it cannot be.
func split(c Consumer, d delivery) []delivery {
	ev, err := events.Decode(d.m.Subject(), d.m.Data())
	var items []events.Event
	if err == nil {
		items, err = c.Split(ev)
	}
	if err == nil && len(items) == 0 {
		err = errNoEvents
	}
	if err != nil {
		d.err = Permanent(err)
		return []delivery{d}
	}
	bt := &batch{m: d.m, at: d.at, left: len(items)}
	out := make([]delivery, len(items))
	for i := range items {
		out[i] = delivery{m: d.m, at: d.at, ev: &items[i], batch: bt, item: i}
	}
	return out
}

var errNoEvents = errors.New("a message that holds many events holds none")

// clock restarts JetStream's AckWait clock for the message once a third of
// it has passed, as for any message, and says when the clock started.
func (bt *batch) clock(ackWait time.Duration) time.Time {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if time.Since(bt.at) > ackWait/3 {
		if err := bt.m.InProgress(); err == nil {
			bt.at = time.Now()
		}
	}
	return bt.at
}

// handleItem handles one event of a message that holds many, and decides
// the message's fate once it was the last.
func (b *Bus) handleItem(hc *handlerContexts, c Consumer, log *slog.Logger, d delivery, h Handler) {
	bt := d.batch
	ctx := hc.get(bt.clock(c.AckWait))
	err := call(ctx, h, *d.ev)
	if done, ok := isAckWhen(err); ok {
		// As for a message alone: the worker goes on, and this event
		// counts as handled once what it handed on is done.
		deadline, _ := ctx.Deadline()
		hc.after.Go(func() {
			err := await(done, deadline)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			b.itemDone(ctx, c, log, d, err)
		})
		return
	}
	b.itemDone(ctx, c, log, d, err)
}

// itemDone records how one event of a message that holds many went, and
// decides the message's fate once it was the last.
func (b *Bus) itemDone(ctx context.Context, c Consumer, log *slog.Logger, d delivery, err error) {
	bt := d.batch
	later, isLater := IsLater(err)
	var failed error
	var retryAfter time.Duration
	switch {
	case err == nil:
		c.Metrics.Message(c.Name, metrics.Handled)
	case isLater:
	case IsPermanent(err):
		if derr := b.deadLetterItem(ctx, c.Name, d, err); derr != nil {
			log.Warn("could not set an event aside; retrying its message", "subject", d.ev.Subject(), "reason", err, "err", derr)
			failed, retryAfter = derr, c.BackoffMin
			break
		}
		c.Metrics.Message(c.Name, metrics.DeadLettered)
		log.Warn("event set aside in the dead-letter stream", "subject", d.ev.Subject(), "message", d.m.Subject(), "reason", err)
	default:
		failed, retryAfter = err, RetryAfter(err)
	}

	bt.mu.Lock()
	if failed != nil {
		if !bt.failed {
			bt.failure = failed
		}
		bt.failed = true
		bt.retryAfter = max(bt.retryAfter, retryAfter)
	}
	if isLater {
		bt.waits, bt.later = true, max(bt.later, later)
	}
	bt.left--
	last := bt.left == 0
	bt.mu.Unlock()
	if last {
		b.settle(c, log, bt)
	}
}

// settle decides the fate of a message all of whose events were handled.
func (b *Bus) settle(c Consumer, log *slog.Logger, bt *batch) {
	m := bt.m
	switch {
	case bt.failed:
		n := uint64(1)
		if md, err := m.Metadata(); err == nil {
			n = md.NumDelivered
		}
		delay := max(backoff(n, c.BackoffMin, c.BackoffMax), bt.retryAfter, bt.later)
		c.Metrics.Message(c.Name, metrics.Retry)
		if IsStoreFull(bt.failure) {
			log.Error("handling failed: the bus is full; retry scheduled", "subject", m.Subject(), "attempt", n, "retry_in", delay.Round(time.Millisecond), "err", bt.failure)
		} else {
			log.Warn("handling an event of a batch failed; the batch is tried again", "subject", m.Subject(), "attempt", n, "retry_in", delay.Round(time.Millisecond), "err", bt.failure)
		}
		_ = m.NakWithDelay(delay)
	case bt.waits:
		_ = m.NakWithDelay(bt.later) // a timer, not a failure
	default:
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; the message will be delivered again", "subject", m.Subject(), "err", err)
		}
	}
}

// deadLetterItem sets one event of a message that holds many aside, alone:
// its own encoding, on its own subject, with the message's place.
func (b *Bus) deadLetterItem(ctx context.Context, consumer string, d delivery, reason error) error {
	md, err := d.m.Metadata()
	if err != nil {
		return err
	}
	data, err := d.ev.Marshal()
	if err != nil {
		data = d.m.Data() // it cannot be told apart: the whole message, then
	}
	dm := nats.NewMsg(events.SubjectDeadLetter(consumer))
	dm.Data = data
	dm.Header.Set(events.HeaderDeadReason, truncate(reason.Error(), 1000))
	dm.Header.Set(events.HeaderDeadSubject, d.ev.Subject())
	dm.Header.Set(events.HeaderDeadStream, md.Stream)
	dm.Header.Set(events.HeaderDeadSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	dm.Header.Set(events.HeaderDeadConsumer, consumer)
	dm.Header.Set(events.HeaderDeadItem, strconv.Itoa(d.item))
	id := fmt.Sprintf("%s/%d/%s/%d", md.Stream, md.Sequence.Stream, consumer, d.item)
	_, err = b.JS.PublishMsg(ctx, dm, jetstream.WithMsgID(id))
	return err
}
