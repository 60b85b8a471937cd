// Package pipeline reads how the alarm's own parts are doing: which
// service instances answer discovery and which of them is active, which
// prober locations have a fresh heartbeat, how far each consumer is
// behind and how many messages were set aside. `tocsin status` shows it;
// the self-watcher alerts on it. Reading only: nothing here changes the
// bus.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Instance is one running service as it answers discovery.
type Instance struct {
	Service  string    `json:"service"`
	Location string    `json:"location,omitempty"`
	ID       string    `json:"id"`
	Admin    string    `json:"admin,omitempty"`
	Ready    *bool     `json:"ready,omitempty"` // nil when its status endpoint did not answer
	Started  time.Time `json:"started,omitzero"`
	Detail   string    `json:"detail,omitempty"`
	Role     string    `json:"role,omitempty"` // "active" or "standby" where one instance works at a time
	// Config is a digest of the config the instance runs with, "" from a
	// version that does not say.
	Config string `json:"config,omitempty"`
}

// Label names the instance's service as the config does: "verifier",
// "prober@lon1".
func (i Instance) Label() string {
	if i.Location != "" {
		return i.Service + "@" + i.Location
	}
	return i.Service
}

// status is what a service's status endpoint answers.
type status struct {
	ID       string    `json:"id"` // empty from a version that did not say
	Service  string    `json:"service"`
	Location string    `json:"location"`
	Ready    bool      `json:"ready"`
	Started  time.Time `json:"started"`
	Detail   string    `json:"detail"`
	Role     string    `json:"role"`
}

// maxInstances bounds what discovery takes in: a bus flooded with forged
// answers makes a long list, not an unbounded one.
const maxInstances = 1000

// Discover asks every service on the bus who it is, for wait, then asks
// each kind of service its status.
func Discover(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]Instance, error) {
	subject, err := micro.ControlSubject(micro.InfoVerb, "", "")
	if err != nil {
		return nil, err
	}
	infos, err := admin.Ask(ctx, nc, []string{subject}, wait, maxInstances)
	if err != nil {
		return nil, fmt.Errorf("discover services: %w", err)
	}
	var out []Instance
	endpoints := map[string]bool{} // the services' status subjects
	for _, m := range infos {
		var info micro.Info
		if json.Unmarshal(m.Data, &info) != nil {
			continue
		}
		name, ok := strings.CutPrefix(info.Name, "tocsin-")
		if !ok {
			continue // another system's service on the same bus
		}
		if s := info.Metadata["service"]; s != "" {
			name = s
		}
		out = append(out, Instance{Service: name, Location: info.Metadata["location"], ID: info.ID, Admin: info.Metadata["admin"], Config: info.Metadata["config"]})
		for _, e := range info.Endpoints {
			if e.Subject == admin.StatusSubject(name) {
				endpoints[e.Subject] = true
			}
		}
	}
	if len(endpoints) == 0 {
		return sortInstances(out), nil
	}
	replies, err := admin.Ask(ctx, nc, slices.Sorted(maps.Keys(endpoints)), wait, len(out))
	if err != nil {
		return nil, fmt.Errorf("ask the services' status: %w", err)
	}
	// Every instance answers, saying which it is; an older one that does
	// not say is shown on an instance of its service and location not yet
	// answered for.
	for _, m := range replies {
		var st status
		if json.Unmarshal(m.Data, &st) != nil {
			continue
		}
		for i := range out {
			if out[i].Ready == nil && (out[i].ID == st.ID || st.ID == "" && out[i].Service == st.Service && out[i].Location == st.Location) {
				ready := st.Ready
				out[i].Ready, out[i].Started, out[i].Detail, out[i].Role = &ready, st.Started, st.Detail, st.Role
				break
			}
		}
	}
	return sortInstances(out), nil
}

// NoneActive lists the services whose instances answering all stand by:
// the one JetStream holds their messages for does not answer (it died,
// and a standby has yet to take over).
func NoneActive(instances []Instance) []string {
	standing := map[string]bool{}
	for _, i := range instances {
		switch i.Role {
		case "standby":
			if _, seen := standing[i.Label()]; !seen {
				standing[i.Label()] = true
			}
		case "active":
			standing[i.Label()] = false
		}
	}
	var out []string
	for _, s := range slices.Sorted(maps.Keys(standing)) {
		if standing[s] {
			out = append(out, s)
		}
	}
	return out
}

// Missing is what is expected and nobody runs: each service of want with
// no locations ("escalator"), and each of its locations otherwise
// ("prober@nyc1"), sorted.
func Missing(instances []Instance, want map[string][]string) []string {
	var out []string
	for _, s := range slices.Sorted(maps.Keys(want)) {
		if len(want[s]) == 0 {
			if !slices.ContainsFunc(instances, func(i Instance) bool { return i.Service == s }) {
				out = append(out, s)
			}
			continue
		}
		for _, l := range want[s] {
			if !slices.ContainsFunc(instances, func(i Instance) bool { return i.Service == s && i.Location == l }) {
				out = append(out, s+"@"+l)
			}
		}
	}
	return out
}

func sortInstances(out []Instance) []Instance {
	slices.SortFunc(out, func(a, b Instance) int {
		return strings.Compare(a.Service+"@"+a.Location+" "+a.ID, b.Service+"@"+b.Location+" "+b.ID)
	})
	return out
}

// Location is what the heartbeats say of one prober location.
type Location struct {
	Live int // probers whose heartbeat is fresh
	// Last is the newest heartbeat's time, zero when none is kept (a
	// prober that stops deletes its own).
	Last time.Time
}

// Locations reads the prober heartbeats, per location.
func Locations(ctx context.Context, b *bus.Bus, now time.Time) (map[string]Location, error) {
	kv, err := b.JS.KeyValue(ctx, events.BucketLocations)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return map[string]Location{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", events.BucketLocations, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", events.BucketLocations, err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]Location{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return out, nil
			}
			var hb events.Heartbeat
			if json.Unmarshal(e.Value(), &hb) != nil || !events.ValidToken(hb.Location) || hb.TTLMS <= 0 {
				continue
			}
			l := out[hb.Location]
			if e.Created().After(l.Last) {
				l.Last = e.Created()
			}
			if e.Created().Add(time.Duration(hb.TTLMS) * time.Millisecond).After(now) {
				l.Live++
			}
			out[hb.Location] = l
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w", events.BucketLocations, ctx.Err())
		}
	}
}

// ConsumerLag is one durable consumer's backlog.
type ConsumerLag struct {
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
}

// ConsumerLags is every durable consumer's backlog on Tocsin's streams,
// and the number of messages set aside as dead letters.
func ConsumerLags(ctx context.Context, js jetstream.JetStream) ([]ConsumerLag, uint64, error) {
	var out []ConsumerLag
	var dead uint64
	for _, sc := range events.StreamConfigs(1) {
		s, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		} else if err != nil {
			return nil, 0, fmt.Errorf("read stream %s: %w", sc.Name, err)
		}
		if sc.Name == events.StreamDeadLetters {
			dead = s.CachedInfo().State.Msgs
		}
		list := s.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue // an ordered reader like tocsin status
			}
			out = append(out, ConsumerLag{Stream: sc.Name, Consumer: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered})
		}
		if err := list.Err(); err != nil {
			return nil, 0, fmt.Errorf("list the consumers of %s: %w", sc.Name, err)
		}
	}
	return out, dead, nil
}
