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
)

// Heartbeat is what a prober writes under "<location>.<instance>".
type Heartbeat struct {
	Location string    `json:"location"`
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`  // when this prober started
	TTLMS    int64     `json:"ttl_ms"` // how long this heartbeat vouches for the prober
}

// Announce writes a heartbeat every period until ctx ends, then deletes it
// so that the location's share of work moves at once rather than after the TTL.
func Announce(ctx context.Context, kv jetstream.KeyValue, hb Heartbeat, period time.Duration, log *slog.Logger) error {
	key := hb.Location + "." + hb.Instance
	b, err := json.Marshal(hb)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
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
	mu      sync.Mutex
	probers map[string]*prober // by key
	now     func() time.Time
	ready   chan struct{}
	allowed []string // the config's locations: no other is ever live
}

// prober is what is known of one prober: live from since until until.
type prober struct {
	location string
	since    time.Time
	until    time.Time // its latest heartbeat's time plus TTL, or when it withdrew
}

// Watch follows the bucket until ctx ends. Only the locations allowed (the
// config's) can be live, each only under its own keys, and no heartbeat
// vouches for longer than MaxTTL. Wait with WaitReady before trusting List.
func Watch(ctx context.Context, kv jetstream.KeyValue, now func() time.Time, allowed []string) (*Live, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch locations: %w", err)
	}
	l := &Live{probers: map[string]*prober{}, now: now, ready: make(chan struct{}), allowed: slices.Clone(allowed)}
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
	p := l.probers[e.Key()]
	if e.Operation() != jetstream.KeyValuePut {
		// Withdrawn (or purged): live until the moment it said so.
		if p != nil && e.Created().Before(p.until) {
			p.until = e.Created()
		}
		return
	}
	var hb Heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil || hb.TTLMS <= 0 || !slices.Contains(l.allowed, hb.Location) ||
		!strings.HasPrefix(e.Key(), hb.Location+".") {
		return // not one of ours, or under another location's key
	}
	if p == nil {
		p = &prober{location: hb.Location, since: hb.Since}
		l.probers[e.Key()] = p
	}
	p.until = e.Created().Add(min(time.Duration(hb.TTLMS)*time.Millisecond, MaxTTL))
	// Forget probers gone for an hour: the bucket does too.
	for k, old := range l.probers {
		if e.Created().Sub(old.until) > time.Hour {
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
		if !t.Before(p.since) && t.Before(p.until) && !slices.Contains(out, p.location) {
			out = append(out, p.location)
		}
	}
	slices.Sort(out)
	return out
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
