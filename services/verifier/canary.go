package verifier

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/canary"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The verifier's part of the canary (see events.CanaryServer): it judges
// each location's canary answer apart from every server, so that no
// server's state, incident or count ever moves, announces it as
// canary.<location>.judged for the notifier, and records that it did.

// openCanary opens the bucket the canary's stages are recorded in.
func (v *Verifier) openCanary(ctx context.Context) error {
	if v.cfg.Watchdog == nil {
		return nil
	}
	kv, err := v.deps.Bus.KV(ctx, events.BucketCanary)
	v.canary = kv
	return err
}

// judgeCanary judges a canary answer. It believes only an answer to a
// canary task of the location it came from (a location's prober may
// publish only that location's results), with the id the scheduler gave
// it, passed, and fresh: an answer delivered again long after, or one
// claiming a slot still to come, proves nothing about now and is ignored.
func (v *Verifier) judgeCanary(ctx context.Context, ev events.Event, r *events.ProbeResult) error {
	if v.cfg.Watchdog == nil {
		v.log.Debug("a canary answer, and no watchdog in this verifier's config; ignored", "location", r.Location)
		return nil
	}
	every := v.cfg.Watchdog.Every.D()
	slot, loc, ok := events.ParseCanaryTaskID(r.Task)
	switch {
	case !slices.Contains(v.cfg.Locations, r.Location):
		return bus.Permanent(fmt.Errorf("a canary answer from %q, which is not one of the config's locations", r.Location))
	case !ok || loc != r.Location || ev.ID != r.Task+"/result" || r.Purpose != events.PurposeCanary:
		return bus.Permanent(fmt.Errorf("a canary answer %q to no canary task of %s", ev.ID, r.Location))
	case !r.OK:
		return bus.Permanent(fmt.Errorf("a canary answer from %s that failed: %s", r.Location, r.Reason))
	}
	now := v.deps.Now()
	if !canary.Fresh(slot, every, now, 2*every, MaxSkew) {
		v.log.Info("a canary answer too old or too far ahead to count; ignored", "location", loc, "slot", slot)
		return nil
	}
	judged := &events.CanaryJudged{Slot: slot, Location: loc, Issued: canary.Due(slot, every), Probed: r.Started, Judged: now}
	// Canary events expire: they prove the pipeline now, and are no history.
	ttl := max(time.Hour, 10*every)
	if err := v.deps.Bus.Publish(ctx, events.New(r.Task+"/judged", "verifier", now, judged), jetstream.WithMsgTTL(ttl)); err != nil {
		return err
	}
	return canary.Record(ctx, v.canary, events.StageJudged, loc, events.CanaryStage{Slot: slot, At: now})
}
