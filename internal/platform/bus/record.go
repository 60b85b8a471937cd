package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// A service that keeps a record and announces its changes writes the
// record first, with the events the change implies held in it, then
// publishes them, then marks them published. Written first, a decision is
// never half carried out: after a crash or a failed publish the events
// wait in the record, and whoever touches the record next publishes them.
// Every event's id is derived from the record, so that publishing twice
// stores once. Records and Change are that sequence, written once.

// Outgoing is one event held in a record until it is published.
type Outgoing struct {
	Subject string          `json:"subject"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
	TTLMS   int64           `json:"ttl_ms,omitempty"` // how long the stream keeps it; 0: as long as the stream keeps any
}

// Hold makes an event ready to be held in a record: encoded and validated
// now, so that what is held can always be published.
func Hold(ev events.Event, ttl time.Duration) (Outgoing, error) {
	data, err := ev.Marshal()
	if err != nil {
		return Outgoing{}, err
	}
	return Outgoing{Subject: ev.Subject(), ID: ev.ID, Data: data, TTLMS: ttl.Milliseconds()}, nil
}

// Outbox holds a record's events until they are published. Embedded in
// the record, it is stored in the same value under the same key, so that
// the record and its events are written together or not at all.
type Outbox struct {
	Pending []Outgoing `json:"pending,omitempty"`
}

func (o *Outbox) outbox() *Outbox { return o }

// Record is a record that holds its events: a pointer to a struct that
// embeds Outbox.
type Record interface{ outbox() *Outbox }

// Records are the records of one kind, in one bucket.
type Records struct {
	Bus *Bus
	KV  jetstream.KeyValue
	// Log hears of a record that could not be read.
	Log *slog.Logger
}

// Read reads the record under key into rec, a pointer to a zero record,
// and returns its revision: 0, and rec untouched, when there is none.
//
// A stored value that does not decode must not stop the alarm, and cannot
// be mended by waiting: rec is left zero, as if the key were new, the
// revision returned is the unreadable value's, so that the next write
// replaces it, and the loss is logged as an error. Every record read
// through Records is treated so.
func (rs Records) Read(ctx context.Context, key string, rec any) (uint64, error) {
	e, err := rs.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	rs.Decode(key, e.Value(), rec)
	return e.Revision(), nil
}

// Decode decodes a stored value read some other way (a watch), as Read
// does: a value that does not decode leaves rec zero, and is logged.
func (rs Records) Decode(key string, value []byte, rec any) {
	if err := json.Unmarshal(value, rec); err != nil {
		reflect.ValueOf(rec).Elem().SetZero()
		rs.Log.Error("stored record unreadable; starting it afresh", "bucket", rs.KV.Bucket(), "key", key, "err", err)
	}
}

// Commit writes rec under key at revision rev (0: only if the key is new)
// with the events it holds, then carries them out as Finish does. It is
// for a caller that keeps the record and its revision between changes: a
// lost race is returned, IsConflict, for it to read the record afresh.
// written is the revision of the first write, 0 if it failed; final is
// that of the record marked done, 0 when the mark could not be written
// (the work is then done again later, harmlessly: read the record afresh).
func (rs Records) Commit(ctx context.Context, key string, rec Record, rev uint64, then func(ctx context.Context, rev uint64) error) (written, final uint64, err error) {
	if written, err = PutJSON(ctx, rs.KV, key, rec, rev); err != nil {
		return 0, 0, fmt.Errorf("record %s: %w", key, err)
	}
	final, err = rs.Finish(ctx, key, rec, written, then)
	return written, final, err
}

// Finish publishes the events a stored record holds, then runs then (the
// rest of the work the record holds, which then marks done in rec), then
// writes rec with its events marked published. An error from publishing
// or then leaves the record as it is, its work to be done again. If the
// mark cannot be written the revision returned is 0 and the error nil:
// everything was done, and doing it again publishes nothing new.
func (rs Records) Finish(ctx context.Context, key string, rec Record, rev uint64, then func(ctx context.Context, rev uint64) error) (uint64, error) {
	if err := rs.Bus.PublishHeld(ctx, rec.outbox().Pending); err != nil {
		return 0, err
	}
	if then != nil {
		if err := then(ctx, rev); err != nil {
			return 0, err
		}
	}
	rec.outbox().Pending = nil
	rev, err := PutJSON(ctx, rs.KV, key, rec, rev)
	if err != nil {
		rs.Log.Warn("published events stay marked pending; published again later", "bucket", rs.KV.Bucket(), "key", key, "err", err)
		return 0, nil
	}
	return rev, nil
}

// changeAttempts bounds how often Change reads a record again after
// losing the race to write it.
const changeAttempts = 20

// Change changes the record under key and publishes the events the change
// decides. It reads the record (the zero record if there is none, or if
// it cannot be read: see Read), publishes what it still holds from an
// earlier change, and calls change with it. change edits the record in
// place and returns the events that follow, and whether the record is to
// be written at all. The record is then written with the events held in
// it, under compare-and-set, and read again and changed again if another
// writer was first; then they are published and marked published. A
// decision not to write, which no compare-and-set checks, is taken again
// on the record as the stream's leader has it, if that is newer than the
// one read (see ReadLeader). It returns the record as it was left and its
// revision.
func Change[R any, P interface {
	*R
	Record
}](ctx context.Context, rs Records, key string, change func(P) ([]Outgoing, bool, error)) (R, uint64, error) {
	read, fromLeader, lost := rs.Read, false, false
	for attempt := range changeAttempts {
		if lost {
			// Lost the race: a moment, not the same for every writer, for
			// the winner's write to be applied everywhere before reading
			// again (on a cluster it may still be in flight).
			if err := pause(ctx, time.Duration(1+rand.IntN(5*attempt))*time.Millisecond); err != nil {
				var zero R
				return zero, 0, err
			}
		}
		var rec R
		p := P(&rec)
		rev, err := read(ctx, key, p)
		if err != nil {
			return rec, 0, err
		}
		held := len(p.outbox().Pending) > 0
		if held {
			// Decided before a crash or a failed publish: out first,
			// in the order they were decided.
			if err := rs.Bus.PublishHeld(ctx, p.outbox().Pending); err != nil {
				return rec, 0, err
			}
			p.outbox().Pending = nil
		}
		out, write, err := change(p)
		if err != nil {
			return rec, 0, err
		}
		if !write && !fromLeader {
			var zero R
			if leaderRev, err := rs.ReadLeader(ctx, key, P(&zero)); err != nil {
				return rec, 0, err
			} else if leaderRev != rev {
				// Decided on a record the leader has moved past: again, on
				// the leader's (read once more, so that change sees it
				// afresh).
				read, fromLeader = rs.ReadLeader, true
				continue
			}
		}
		if !write {
			if held {
				rev = rs.markPublished(ctx, key, p, rev)
			}
			return rec, rev, nil
		}
		p.outbox().Pending = out
		next, err := PutJSON(ctx, rs.KV, key, p, rev)
		if lost = IsConflict(err); lost {
			continue
		}
		if err != nil {
			return rec, 0, fmt.Errorf("record %s: %w", key, err)
		}
		if len(out) == 0 {
			return rec, next, nil
		}
		if err := rs.Bus.PublishHeld(ctx, out); err != nil {
			return rec, 0, err // whoever changes the record next publishes them
		}
		p.outbox().Pending = nil
		return rec, rs.markPublished(ctx, key, p, next), nil
	}
	var zero R
	return zero, 0, fmt.Errorf("%s kept changing under %d writers' feet; retrying", key, changeAttempts)
}

// errCodeInProcess is JetStream's answer to a message whose id another
// publish is storing at this very moment (two writers publishing the same
// held event). That one may yet fail, so it is not taken as stored.
const errCodeInProcess jetstream.ErrorCode = 10158

// whileInProcess publishes, and again a moment later while the same id is
// being stored by another publish: then it is a duplicate, which succeeds,
// or it is stored now. Failing instead would redeliver the whole message
// being handled, after a backoff, for nothing.
func whileInProcess(ctx context.Context, publish func() error) error {
	return whileAnswered(ctx, errCodeInProcess, publish)
}

// whileAnswered does try, and again a moment later while JetStream answers
// it with code, which says another write is being stored at this moment
// and is settled within moments; at most ten times.
func whileAnswered(ctx context.Context, code jetstream.ErrorCode, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != code || attempt == 10 {
			return err
		}
		if err := pause(ctx, time.Duration(attempt)*5*time.Millisecond); err != nil {
			return err
		}
	}
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// markPublished writes a record whose events are all published; if it
// cannot, they are published again later, which JetStream's
// de-duplication absorbs, and the revision returned is the one before.
func (rs Records) markPublished(ctx context.Context, key string, rec Record, rev uint64) uint64 {
	next, err := PutJSON(ctx, rs.KV, key, rec, rev)
	if err != nil {
		return rev
	}
	return next
}

// PublishHeld publishes held events in order, each under its id, so that
// publishing one again stores nothing more.
func (b *Bus) PublishHeld(ctx context.Context, out []Outgoing) error {
	for _, o := range out {
		m := nats.NewMsg(o.Subject)
		m.Data = o.Data
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(o.ID)}
		if o.TTLMS > 0 {
			opts = append(opts, jetstream.WithMsgTTL(time.Duration(o.TTLMS)*time.Millisecond))
		}
		if err := whileInProcess(ctx, func() error { _, err := b.JS.PublishMsg(ctx, m, opts...); return err }); err != nil {
			return fmt.Errorf("publish %s: %w", o.ID, storeError(streamOf(o.Subject), err))
		}
	}
	return nil
}
