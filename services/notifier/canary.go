package notifier

import (
	"context"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/canary"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The notifier's part of the canary (see events.CanaryServer): the
// verifier's canary.<location>.judged events come through the same
// consumer as every incident event, by the same workers, so that a
// notifier that stops deciding on incidents stops deciding on canaries.
// It decides that nobody is to be told, records that it decided, and
// sends nothing.

// eventFilters are the subjects the notifier follows: incidents, and the
// canary when there is a watchdog to prove the pipeline to.
func (n *Notifier) eventFilters() []string {
	if n.cfg.Watchdog == nil {
		return []string{events.SubjectIncidents}
	}
	return []string{events.SubjectIncidents, events.SubjectCanaries}
}

// openCanary opens the bucket the canary's stages are recorded in.
func (n *Notifier) openCanary(ctx context.Context) (jetstream.KeyValue, error) {
	if n.cfg.Watchdog == nil {
		return nil, nil
	}
	return n.bus.KV(ctx, events.BucketCanary)
}

// decideCanary records "canary N of location decided at T" and sends
// nothing: a canary is nobody's business but the watchdog's.
func (n *Notifier) decideCanary(ctx context.Context, kv jetstream.KeyValue, ev events.Event, c *events.CanaryJudged) error {
	if kv == nil || !slices.Contains(n.cfg.Locations, c.Location) || ev.Source != "verifier" {
		// Not ours to prove: no watchdog here, or not the verifier's word.
		n.log.Debug("a canary event not for this notifier; ignored", "id", ev.ID)
		return nil
	}
	now := n.now()
	if err := canary.Record(ctx, kv, events.StageDecided, c.Location, events.CanaryStage{Slot: c.Slot, At: now}); err != nil {
		return fmt.Errorf("canary %d: %w", c.Slot, err)
	}
	n.log.Debug("canary decided: nobody to tell", "location", c.Location, "slot", c.Slot)
	return nil
}
