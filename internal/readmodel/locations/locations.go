// Package locations knows which probers are alive. Each prober announces
// itself with a heartbeat in a key-value bucket; anyone can watch the bucket
// and ask which locations were live at a given moment. A prober is live from
// the time it started until its latest heartbeat's TTL runs out or it
// withdraws, all judged by timestamps the bucket keeps, so that every reader
// asking about the same moment gets the same answer: that is what lets
// scheduler replicas agree without talking to each other.
package locations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Announce writes a heartbeat every period until ctx ends, then deletes it
// so that the location's share of work moves at once rather than after the TTL.
func Announce(ctx context.Context, kv jetstream.KeyValue, hb events.Heartbeat, period time.Duration, log *slog.Logger) error {
	key := hb.Key()
	b, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	// Stopped while the first heartbeat was on its way is a stop, not a
	// failure: the loop below withdraws whatever may have been written.
	if _, err := kv.Put(ctx, key, b); err != nil && ctx.Err() == nil {
		return fmt.Errorf("announce location %s: %w", hb.Location, err)
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := kv.Delete(dctx, key); err != nil {
				log.Warn("could not withdraw the heartbeat; it expires by itself", "location", hb.Location, "err", err)
			}
			return nil
		case <-t.C:
			if _, err := kv.Put(ctx, key, b); err != nil && ctx.Err() == nil {
				log.Warn("heartbeat not written; retrying next beat", "location", hb.Location, "err", err)
			}
		}
	}
}

// MaxTTL is the longest a heartbeat may vouch for its prober: a prober
// beats every few seconds, and a heartbeat claiming a year would keep a
// dead or forged location live, its share of checks never made.
const MaxTTL = time.Minute

// Live tracks the heartbeats of a bucket.
type Live struct {
	kv      jetstream.KeyValue
	mu      sync.Mutex
	probers map[string]*prober // by key
	now     func() time.Time
	ready   chan struct{}
	allowed []string // the config's locations: no other is ever live
	// seen is the stream sequence and the time of the latest entry the
	// watch delivered; delivered wakes those waiting in Settled.
	seen      uint64
	seenAt    time.Time
	delivered chan struct{}
	settled   time.Time // every entry written before it has been delivered
}

// prober is what is known of one prober: the spans of time its heartbeats
// vouched for, oldest first. Each heartbeat adds the span from its own
// time to its TTL, so a later heartbeat never makes a past gap live: what
// a reader answers about a moment, once it has every entry written before
// that moment, is what every other reader answers.
type prober struct {
	location string
	spans    []span
}

type span struct{ from, until time.Time }

// Watch follows the bucket until ctx ends. Only the locations allowed (the
// config's) can be live, each only under its own keys, and no heartbeat
// vouches for longer than MaxTTL. Wait with WaitReady before trusting List.
func Watch(ctx context.Context, kv jetstream.KeyValue, now func() time.Time, allowed []string) (*Live, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch locations: %w", err)
	}
	l := &Live{kv: kv, probers: map[string]*prober{}, now: now, ready: make(chan struct{}), allowed: slices.Clone(allowed), delivered: make(chan struct{})}
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil { // the current values have all arrived
				close(l.ready)
				continue
			}
			l.apply(e)
		}
	}()
	return l, nil
}

func (l *Live) apply(e jetstream.KeyValueEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Revision() > l.seen {
		l.seen, l.seenAt = e.Revision(), e.Created()
		close(l.delivered)
		l.delivered = make(chan struct{})
	}
	p := l.probers[e.Key()]
	if e.Operation() != jetstream.KeyValuePut {
		// Withdrawn (or purged): live until the moment it said so.
		if p != nil {
			last := &p.spans[len(p.spans)-1]
			if e.Created().Before(last.until) {
				last.until = later(e.Created(), last.from)
			}
		}
		return
	}
	var hb events.Heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil || hb.TTLMS <= 0 || !slices.Contains(l.allowed, hb.Location) ||
		!strings.HasPrefix(e.Key(), hb.Location+".") {
		return // not one of ours, or under another location's key
	}
	s := span{from: e.Created(), until: e.Created().Add(min(time.Duration(hb.TTLMS)*time.Millisecond, MaxTTL))}
	if p == nil {
		// The first heartbeat heard of a prober: it says it has been
		// running since it started, which is all a reader that came
		// later can know of its past.
		p = &prober{location: hb.Location}
		l.probers[e.Key()] = p
		if hb.Since.Before(s.from) && s.from.Sub(hb.Since) < time.Hour {
			s.from = hb.Since
		}
	}
	if n := len(p.spans); n > 0 && !s.from.After(p.spans[n-1].until) {
		p.spans[n-1].until = later(p.spans[n-1].until, s.until)
	} else {
		p.spans = append(p.spans, s)
	}
	// Forget what ended over an hour ago: no schedule looks back so far.
	for k, old := range l.probers {
		i := 0
		for i < len(old.spans) && e.Created().Sub(old.spans[i].until) > time.Hour {
			i++
		}
		old.spans = old.spans[i:]
		if len(old.spans) == 0 {
			delete(l.probers, k)
		}
	}
}

// List is the locations live now, sorted.
func (l *Live) List() []string { return l.At(l.now()) }

// At is the locations that were live at t, sorted.
func (l *Live) At(t time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.probers {
		if slices.Contains(out, p.location) {
			continue
		}
		for _, s := range p.spans {
			if !t.Before(s.from) && t.Before(s.until) {
				out = append(out, p.location)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// Settled waits until every entry written to the bucket before t has been
// delivered, so that At(t) is final: the answer every reader gives. It
// asks the bucket for its latest sequence only when no later entry has
// arrived by itself. It gives up when ctx ends; At then answers from what
// has arrived.
func (l *Live) Settled(ctx context.Context, t time.Time) error {
	l.mu.Lock()
	done := l.seenAt.After(t) || l.settled.After(t)
	l.mu.Unlock()
	if done {
		return nil
	}
	asked := l.now()
	st, err := l.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("read the locations bucket's state: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return nil
	}
	last := bs.StreamInfo().State.LastSeq
	for {
		l.mu.Lock()
		seen, delivered := l.seen, l.delivered
		l.mu.Unlock()
		if seen >= last {
			l.mu.Lock()
			l.settled = later(l.settled, asked)
			l.mu.Unlock()
			return nil
		}
		select {
		case <-delivered:
		case <-ctx.Done():
			return fmt.Errorf("locations watch at sequence %d of %d: %w", seen, last, ctx.Err())
		}
	}
}

// WaitReady waits until the current values are read, or ctx ends.
func (l *Live) WaitReady(ctx context.Context) error {
	select {
	case <-l.ready:
		return nil
	case <-ctx.Done():
		return errors.New("locations bucket not read in time")
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
