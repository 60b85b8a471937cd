// Package locations knows which probers are alive. Each prober announces
// itself with a heartbeat in a key-value bucket; anyone can watch the bucket
// and ask which locations are live now. A location is live while one of its
// probers' heartbeats is younger than the TTL that heartbeat declares.
package locations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Heartbeat is what a prober writes under "<location>.<instance>".
type Heartbeat struct {
	Location string `json:"location"`
	Instance string `json:"instance"`
	TTLMS    int64  `json:"ttl_ms"` // how long this heartbeat vouches for the prober
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

// Live tracks the heartbeats of a bucket.
type Live struct {
	mu    sync.Mutex
	beats map[string]beat // by key
	now   func() time.Time
	ready chan struct{}
}

type beat struct {
	location string
	until    time.Time
}

// Watch follows the bucket until ctx ends. Wait for Ready before trusting List.
func Watch(ctx context.Context, kv jetstream.KeyValue, now func() time.Time) (*Live, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch locations: %w", err)
	}
	l := &Live{beats: map[string]beat{}, now: now, ready: make(chan struct{})}
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

// Ready is closed once the bucket's current values have been read.
func (l *Live) Ready() <-chan struct{} { return l.ready }

func (l *Live) apply(e jetstream.KeyValueEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(l.beats, e.Key())
		return
	}
	var hb Heartbeat
	if err := json.Unmarshal(e.Value(), &hb); err != nil || hb.Location == "" || hb.TTLMS <= 0 {
		delete(l.beats, e.Key())
		return
	}
	// The server's timestamp, not ours: a reader that joins late still
	// sees how old each heartbeat is.
	l.beats[e.Key()] = beat{location: hb.Location, until: e.Created().Add(time.Duration(hb.TTLMS) * time.Millisecond)}
}

// List is the live locations, sorted.
func (l *Live) List() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var out []string
	for _, b := range l.beats {
		if now.Before(b.until) && !slices.Contains(out, b.location) {
			out = append(out, b.location)
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
