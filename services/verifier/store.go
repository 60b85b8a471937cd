package verifier

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// The alarm's own store is watched like a certificate: a stream or bucket
// past bus.WarnFill is a warning to staff (an email a day until it is
// fixed), before the full store refuses the events that page them.
const (
	// storeClear is the fill below which the warning ends: lower than
	// the one that raises it, so that a store hovering at the line does
	// not warn and clear again and again.
	storeClear = 0.7
	storeBox   = "tocsin" // the box the warning names: the alarm itself
)

// storeWarning is what the incidents bucket keeps, under
// "store.<stream>", of a warning raised about a stream: the event, kept
// until it is published, so that a crash between never loses it.
type storeWarning struct {
	Opened  events.IncidentOpened `json:"opened"`
	Pending bool                  `json:"pending,omitempty"`
}

// watchStore looks at the bus's store every period until ctx ends.
func (v *Verifier) watchStore(ctx context.Context, ikv jetstream.KeyValue, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := v.checkStore(ctx, ikv); err != nil && ctx.Err() == nil {
			v.log.Warn("could not look at the store; looking again later", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkStore raises a warning for each stream past bus.WarnFill, and ends
// it once the stream is below storeClear.
func (v *Verifier) checkStore(ctx context.Context, ikv jetstream.KeyValue) error {
	usage, err := v.usage(ctx)
	if err != nil {
		return err
	}
	for _, u := range usage {
		key := "store." + u.Stream
		var w storeWarning
		rev, err := bus.GetJSON(ctx, ikv, key, &w)
		if err != nil {
			return err
		}
		switch fill := u.Fill(); {
		case rev == 0 && fill >= bus.WarnFill:
			now := v.deps.Now()
			reason := fmt.Sprintf("%s is %.0f%% full (%d of %d bytes): once full it refuses new events or drops the oldest; raise bus.max_store or make room",
				u.Stream, 100*fill, u.Bytes, u.MaxBytes)
			w = storeWarning{Pending: true, Opened: events.IncidentOpened{
				Incident: judge.IncidentID("store/"+u.Stream, 0, now), Opened: now, Severity: events.SeverityWarning,
				Title:   fmt.Sprintf("The alarm's store: %s is %.0f%% full", u.Stream, 100*fill),
				Servers: []events.AffectedServer{{Server: u.Stream, Box: storeBox, Check: "nats://" + u.Stream, Since: now, Reason: events.Clip(reason, events.MaxReason)}},
			}}
			if rev, err = bus.PutJSON(ctx, ikv, key, w, 0); bus.IsConflict(err) {
				continue // another verifier raised it
			} else if err != nil {
				return err
			}
			v.log.Error("the bus's store is nearly full: staff are warned", "stream", u.Stream, "fill", fmt.Sprintf("%.0f%%", 100*fill))
			fallthrough
		case rev != 0 && w.Pending:
			o := &w.Opened
			if err := v.deps.Bus.Publish(ctx, events.New(o.Incident+"/opened", "verifier", o.Opened, o)); err != nil {
				return err
			}
			w.Pending = false
			if _, err := bus.PutJSON(ctx, ikv, key, w, rev); err != nil && !bus.IsConflict(err) {
				return err // published again next time, which de-duplication absorbs
			}
		case rev != 0 && fill < storeClear:
			o := w.Opened
			now := v.deps.Now()
			r := &events.IncidentResolved{Incident: o.Incident, Opened: o.Opened, Resolved: now, Title: o.Title,
				Servers: []string{u.Stream}, Severity: events.SeverityWarning}
			if err := v.deps.Bus.Publish(ctx, events.New(o.Incident+"/resolved", "verifier", now, r)); err != nil {
				return err
			}
			if err := ikv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && !bus.IsConflict(err) {
				return err
			}
			v.log.Info("the bus's store has room again", "stream", u.Stream, "fill", fmt.Sprintf("%.0f%%", 100*fill))
		}
	}
	return nil
}
