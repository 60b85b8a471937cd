package incident

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// PostNote publishes a staff update to an incident, numbered after the
// incident's others, so that two people posting at once get two numbers:
// from `tocsin incident update` or the status page's admin API alike.
func PostNote(ctx context.Context, b *bus.Bus, id, status, message, by string, now time.Time) (*events.IncidentNote, error) {
	n := &events.IncidentNote{Incident: id, Seq: 1, Status: status, Message: strings.TrimSpace(message), By: by, At: now.UTC()}
	if err := n.Validate(); err != nil {
		return nil, problem.Errorf(problem.Invalid, "%w", err)
	}
	kv, err := b.KV(ctx, events.BucketIncidents)
	if err != nil {
		return nil, err
	}
	if _, err := kv.Get(ctx, id); errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, problem.Errorf(problem.NotFound, "no incident %s", id)
	} else if err != nil {
		return nil, err
	}
	if n.Seq, err = nextNote(ctx, kv, id); err != nil {
		return nil, err
	}
	if err := b.Publish(ctx, events.New(fmt.Sprintf("%s/note/%d", id, n.Seq), "tocsin", n.At, n)); err != nil {
		return nil, err
	}
	return n, nil
}

func nextNote(ctx context.Context, kv jetstream.KeyValue, incident string) (int64, error) {
	key := "notes." + incident
	for range 10 {
		var n int64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = kv.Create(ctx, key, []byte("1"))
			n = 1
		case err != nil:
			return 0, err
		default:
			n, _ = strconv.ParseInt(string(e.Value()), 10, 64)
			n++
			_, err = kv.Update(ctx, key, []byte(strconv.FormatInt(n, 10)), e.Revision())
		}
		if err == nil {
			return n, nil
		}
		if !bus.IsConflict(err) {
			return 0, err
		}
	}
	return 0, problem.Errorf(problem.Conflict, "too many updates at once; try again")
}
