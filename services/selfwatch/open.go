package selfwatch

import (
	"context"
	"errors"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Open is every self alert raised and not cleared, oldest first, as the
// watcher's state holds them: what `tocsin status` shows staff.
func Open(ctx context.Context, b *bus.Bus) ([]events.SelfRaised, error) {
	kv, err := b.KV(ctx, events.BucketSelf)
	if err != nil {
		return nil, err
	}
	var rec record
	if _, err := bus.GetJSON(ctx, kv, events.SelfStateKey, &rec); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, err
	}
	var out []events.SelfRaised
	for _, a := range rec.Alerts {
		if a.Raised != nil {
			out = append(out, *a.Raised)
		}
	}
	slices.SortFunc(out, func(a, b events.SelfRaised) int { return a.Raised.Compare(b.Raised) })
	return out, nil
}
