package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// stormKey names the record, in the deliveries bucket, of the boxes each
// open incident has serving nobody. A storm is one incident per
// datacentre; each pages a person once between them (see storm), so the
// page that goes names them all from here.
const stormKey = "storm.open"

// stormRecord is the incidents open with a box serving nobody.
type stormRecord struct {
	Incidents map[string]stormEntry `json:"incidents"`
}

// stormEntry is how many boxes of one incident serve nobody, in which
// datacentres, and when it first had one: counts, not names, so that a
// fleet's storm fits in one record.
type stormEntry struct {
	Down        int       `json:"down"`
	Datacentres []string  `json:"datacentres,omitempty"`
	Since       time.Time `json:"since"`
}

// stormForget bounds the record: an entry this old whose resolution never
// came is dropped.
const stormForget = 7 * 24 * time.Hour

// noteStorm keeps the incident's entry in the storm record true: its
// boxes serving nobody while it is open, none once it is resolved. It
// writes only when they change.
func (n *Notifier) noteStorm(ctx context.Context, kv jetstream.KeyValue, st *incidentState) error {
	var down []string
	if !st.Warning && st.Resolved == nil {
		down = st.DownBoxes()
	}
	if slices.Equal(down, st.StormDown) {
		return nil
	}
	for range 10 {
		var rec stormRecord
		rev, err := bus.GetJSON(ctx, kv, stormKey, &rec)
		if err != nil {
			return err
		}
		now := n.now()
		if rec.Incidents == nil {
			rec.Incidents = map[string]stormEntry{}
		}
		for id, e := range rec.Incidents {
			if now.Sub(e.Since) > stormForget {
				delete(rec.Incidents, id)
			}
		}
		if len(down) == 0 {
			delete(rec.Incidents, st.Incident)
		} else {
			e, ok := rec.Incidents[st.Incident]
			if !ok {
				e.Since = now
			}
			e.Down, e.Datacentres = len(down), n.datacentres(down)
			rec.Incidents[st.Incident] = e
		}
		if _, err := bus.PutJSON(ctx, kv, stormKey, rec, rev); !bus.IsConflict(err) {
			if err == nil {
				st.StormDown = down
			}
			return err
		}
	}
	return errors.New("the storm record kept changing; retrying")
}

// stormSummary is what a page about the incident says of the storm it is
// part of, "" when it is alone: how many boxes serve nobody in how many
// datacentres, over every incident open with a box serving nobody. Each
// person is paged once between them within the group window, so the page
// that goes names them all, however long ago the others began.
func (n *Notifier) stormSummary(ctx context.Context, kv jetstream.KeyValue, st *incidentState) string {
	var rec stormRecord
	if _, err := bus.GetJSON(ctx, kv, stormKey, &rec); err != nil {
		n.log.Warn("could not read the storm record; the page names its own incident only", "incident", st.Incident, "err", err)
		return ""
	}
	down := st.DownBoxes()
	boxes, dcs := len(down), n.datacentres(down)
	others := 0
	for id, e := range rec.Incidents {
		if id == st.Incident || e.Down == 0 {
			continue
		}
		others++
		boxes += e.Down
		for _, dc := range e.Datacentres {
			if !slices.Contains(dcs, dc) {
				dcs = append(dcs, dc)
			}
		}
	}
	if others == 0 {
		return ""
	}
	s := fmt.Sprintf("STORM: %s down", count(boxes, "box", "boxes"))
	if len(dcs) > 0 {
		s += " in " + count(len(dcs), "datacentre", "datacentres")
	}
	return s + "."
}

// datacentres is the datacentres boxes are in, as the config says.
func (n *Notifier) datacentres(boxes []string) []string {
	var dcs []string
	for _, id := range boxes {
		if b := n.cfg.Box(id); b != nil && b.Datacentre != "" && !slices.Contains(dcs, b.Datacentre) {
			dcs = append(dcs, b.Datacentre)
		}
	}
	return dcs
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
