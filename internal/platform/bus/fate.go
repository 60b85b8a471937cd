package bus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// decide carries out the fate of a message its handler returned err for,
// and says whether it was handled and acknowledged.
func (b *Bus) decide(ctx context.Context, c Consumer, log *slog.Logger, m jetstream.Msg, err error) (acked bool) {
	later, isLater := IsLater(err)
	switch {
	case err == nil:
		c.Metrics.Message(c.Name, metrics.Handled)
		if err := m.Ack(); err != nil {
			log.Warn("ack failed; the message will be delivered again", "subject", m.Subject(), "err", err)
			return false
		}
		return true
	case isLater:
		_ = m.NakWithDelay(later) // a timer, not a failure
	case IsPermanent(err):
		if derr := b.deadLetter(ctx, c.Name, m, err); derr != nil {
			log.Warn("could not set a message aside; retrying it", "subject", m.Subject(), "reason", err, "err", derr)
			_ = m.NakWithDelay(c.BackoffMin)
			return
		}
		c.Metrics.Message(c.Name, metrics.DeadLettered)
		log.Warn("message set aside in the dead-letter stream", "subject", m.Subject(), "reason", err)
		_ = m.TermWithReason(truncate(firstLine(err.Error()), 200))
	default:
		n := uint64(1)
		if md, mdErr := m.Metadata(); mdErr == nil {
			n = md.NumDelivered
		}
		// A provider that said when to come back is left alone until
		// then; RetryAfter is bounded, so an outage delays, never drops.
		delay := max(backoff(n, c.BackoffMin, c.BackoffMax), RetryAfter(err))
		c.Metrics.Message(c.Name, metrics.Retry)
		if IsStoreFull(err) {
			// Retrying cannot help until someone gives the bus room.
			log.Error("handling failed: the bus is full; retry scheduled", "subject", m.Subject(), "attempt", n, "retry_in", delay.Round(time.Millisecond), "err", err)
		} else {
			log.Warn("handling failed; retry scheduled", "subject", m.Subject(), "attempt", n, "retry_in", delay.Round(time.Millisecond), "err", err)
		}
		_ = m.NakWithDelay(delay)
	}
	return false
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
