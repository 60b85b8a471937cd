// Package canary is what the stages of the pipeline share about the
// canary: when its slots fall due, and how each stage records its part in
// events.BucketCanary for the watchdog to read.
package canary

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Due is about when a slot fell due: a slot is a whole number of
// intervals since the Unix epoch, and the scheduler spreads its canary
// within the interval as it spreads every server, so the slot fell due
// between this and one interval later.
func Due(slot int64, every time.Duration) time.Time {
	return time.Unix(0, slot*int64(every)).UTC()
}

// Fresh reports whether a canary of slot is one the pipeline may still
// carry at now: due no more than late ago, and not ahead of now by more
// than skew (clocks of different hosts). An old canary delivered again,
// or one forged for the future, proves nothing about now.
func Fresh(slot int64, every time.Duration, now time.Time, late, skew time.Duration) bool {
	due := Due(slot, every)
	return !due.After(now.Add(skew)) && now.Sub(due.Add(every)) <= late
}

// Record writes what a stage did for one location's canary.
func Record(ctx context.Context, kv jetstream.KeyValue, stage, location string, rec events.CanaryStage) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, events.CanaryKey(stage, location), b); err != nil {
		return fmt.Errorf("record the canary %s at %s: %w", stage, location, err)
	}
	return nil
}

// Read is what each stage last recorded for location; a stage that has
// recorded nothing (or something unreadable) is missing from the map.
func Read(ctx context.Context, kv jetstream.KeyValue, location string) (map[string]events.CanaryStage, error) {
	out := map[string]events.CanaryStage{}
	for _, stage := range events.CanaryStages {
		e, err := kv.Get(ctx, events.CanaryKey(stage, location))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read the canary %s at %s: %w", stage, location, err)
		}
		var rec events.CanaryStage
		if json.Unmarshal(e.Value(), &rec) == nil && rec.Slot > 0 {
			out[stage] = rec
		}
	}
	return out, nil
}
