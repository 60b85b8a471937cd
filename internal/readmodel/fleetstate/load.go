package fleetstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Load reads the state as the services keep it: the verifier's server and
// box buckets, the incidents open in each datacentre, and those
// incidents' events (acknowledgements, staff updates, escalations).
func Load(ctx context.Context, b *bus.Bus, now time.Time) (State, error) {
	st := State{Servers: map[string]events.ServerState{}, Boxes: map[string]events.BoxState{}, AsOf: now}
	if err := Servers(ctx, b, func(key string, rec events.ServerRecord) {
		st.Servers[key] = rec.State
	}); err != nil {
		return st, err
	}
	if err := Boxes(ctx, b, func(key string, rec events.BoxRecord) {
		st.Boxes[key] = rec.State
	}); err != nil {
		return st, err
	}
	var err error
	st.Incidents, err = OpenIncidents(ctx, b)
	return st, err
}

// Each calls f with every key and value in a bucket matching filter, as
// they are now. A bucket nobody has written yet is empty.
func Each(ctx context.Context, b *bus.Bus, bucket, filter string, f func(key string, value []byte)) error {
	kv, err := b.JS.KeyValue(ctx, bucket)
	if err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil
		}
		return fmt.Errorf("open %s: %w", bucket, err)
	}
	w, err := kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return nil // the nil marks the end of the current values
			}
			f(e.Key(), e.Value())
		case <-ctx.Done():
			return fmt.Errorf("read %s: %w", bucket, ctx.Err())
		}
	}
}

// Servers calls f with every server's record, as the verifier keeps it
// now; a record that does not decode, or holds no state known to this
// version, is skipped.
func Servers(ctx context.Context, b *bus.Bus, f func(server string, rec events.ServerRecord)) error {
	return Each(ctx, b, events.BucketServers, ">", func(key string, v []byte) {
		var rec events.ServerRecord
		if json.Unmarshal(v, &rec) == nil && rec.State.Valid() {
			f(key, rec)
		}
	})
}

// Boxes calls f with every box's record, as the verifier keeps it now; a
// record that does not decode, or holds no state known to this version,
// is skipped.
func Boxes(ctx context.Context, b *bus.Bus, f func(box string, rec events.BoxRecord)) error {
	return Each(ctx, b, events.BucketBoxes, ">", func(key string, v []byte) {
		var rec events.BoxRecord
		if json.Unmarshal(v, &rec) == nil && rec.State.Valid() {
			f(key, rec)
		}
	})
}

// OpenIncidents is every incident the verifier lists as open, as its
// events tell it, oldest first.
func OpenIncidents(ctx context.Context, b *bus.Bus) ([]Incident, error) {
	var ids []string
	if err := Each(ctx, b, events.BucketIncidents, events.FilterOpenIncidents, func(_ string, v []byte) {
		var open events.OpenIncidents
		if json.Unmarshal(v, &open) != nil {
			return
		}
		for _, o := range open.Incidents {
			if events.ValidToken(o.ID) && !slices.Contains(ids, o.ID) {
				ids = append(ids, o.ID)
			}
		}
	}); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	views := map[string]*incident.View{}
	steps := map[string][]string{}
	filters := make([]string, 0, len(ids))
	for _, id := range ids {
		views[id] = &incident.View{Incident: id}
		filters = append(filters, events.SubjectIncident(id, ">"))
	}
	if err := Replay(ctx, b, filters, func(ev events.Event) {
		id := incident.Of(ev)
		v := views[id]
		if v == nil {
			return
		}
		v.Merge(ev, 0)
		if e, ok := ev.Data.(*events.IncidentEscalated); ok && !slices.Contains(steps[id], e.Step) {
			steps[id] = append(steps[id], e.Step)
		}
	}); err != nil {
		return nil, err
	}
	var out []Incident
	for _, id := range ids {
		v := views[id]
		if v.Resolved != nil || v.Opened.IsZero() {
			continue // resolved since the list was read, or its events are gone
		}
		out = append(out, FromView(v, steps[id]))
	}
	slices.SortFunc(out, func(a, b Incident) int { return a.Since.Compare(b.Since) })
	return out, nil
}

// Replay hands f every event stored on the events stream under filters,
// in order, up to the newest there is now. Events that do not decode are
// skipped: the consumers set them aside already.
func Replay(ctx context.Context, b *bus.Bus, filters []string, f func(events.Event)) error {
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: filters})
	if err != nil {
		return fmt.Errorf("read %s: %w", strings.Join(filters, ", "), err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return fmt.Errorf("read %s: %w", strings.Join(filters, ", "), err)
	}
	for left := info.NumPending; left > 0; {
		batch, err := c.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", strings.Join(filters, ", "), err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if ev, err := events.Decode(m.Subject(), m.Data()); err == nil {
				f(ev)
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("read %s: %w", strings.Join(filters, ", "), err)
		}
		if n == 0 {
			return fmt.Errorf("read %s: the stream gave nothing with %d events left", strings.Join(filters, ", "), left)
		}
		left -= uint64(n)
	}
	return nil
}
