// Package maintenance keeps the maintenance windows, those written in the
// config and those started at run time with "tocsin maintenance", in one
// key-value bucket that every service reads: the verifier to stop paging
// for servers being worked on, the status page to tell customers ahead of
// a window that takes a service down. Each window set or ended is also
// announced as an event.
package maintenance

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// ByConfig marks the windows that come from the config file.
const ByConfig = "config"

// Window builds a window over servers and works out whether customers must
// be told of it: they are when it takes every server of a box out of
// service at once.
func Window(cfg *config.Config, id string, servers []string, from, until time.Time, reason, by string) (events.MaintenanceSet, error) {
	w := events.MaintenanceSet{
		Maintenance: id, Servers: slices.Sorted(slices.Values(servers)), From: from.UTC(), Until: until.UTC(),
		Reason: reason, By: by,
	}
	for _, s := range servers {
		if _, ok := cfg.Target(s); !ok {
			return w, fmt.Errorf("no server %q in any box of %s", s, cfg.File)
		}
	}
	w.Boxes = cfg.BoxesTakenDown(servers)
	w.Public = len(w.Boxes) > 0
	return w, w.Validate()
}

// ConfigID is the id of a window from the config: the same servers and
// times give the same id, so editing the reason updates the window, and
// moving it replaces it.
func ConfigID(m config.Maintenance) string {
	servers := slices.Sorted(slices.Values(m.Servers))
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", strings.Join(servers, ","), m.From.Unix(), m.Until.Unix()))
	return "cfg-" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:8])
}

// NewID is the id of a window started at run time: its start date and a
// short random part, easy to read out and type.
func NewID(from time.Time, random []byte) string {
	return from.UTC().Format("20060102") + "-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(random))[:6]
}

// Store reads and writes the windows.
type Store struct {
	bus *bus.Bus
	kv  jetstream.KeyValue
}

// Open returns the store on b's maintenance bucket.
func Open(ctx context.Context, b *bus.Bus) (*Store, error) {
	kv, err := b.KV(ctx, events.BucketMaintenance)
	if err != nil {
		return nil, err
	}
	return &Store{bus: b, kv: kv}, nil
}

// Start records a new window and announces it.
func (s *Store) Start(ctx context.Context, w events.MaintenanceSet) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, w.Maintenance, b)
	if bus.IsConflict(err) {
		return fmt.Errorf("a maintenance window %s exists already", w.Maintenance)
	}
	if err != nil {
		return fmt.Errorf("record maintenance %s: %w", w.Maintenance, err)
	}
	return s.announce(ctx, w, rev)
}

// announce publishes a window as set; the id names the bucket revision, so
// that each change is announced once.
func (s *Store) announce(ctx context.Context, w events.MaintenanceSet, rev uint64) error {
	id := fmt.Sprintf("%s/set/%d", w.Maintenance, rev)
	if err := s.bus.Publish(ctx, events.New(id, "tocsin", time.Now(), &w)); err != nil {
		return fmt.Errorf("announce maintenance %s: %w", w.Maintenance, err)
	}
	return nil
}

// End closes a window now: one under way ends at once, one not begun yet is
// withdrawn.
func (s *Store) End(ctx context.Context, id, by string, now time.Time) (events.MaintenanceSet, error) {
	w, rev, err := s.get(ctx, id)
	if err != nil {
		return w, err
	}
	switch {
	case !now.Before(w.Until):
		return w, fmt.Errorf("maintenance %s ended already, at %s", id, w.Until.Format(time.RFC3339))
	case now.Before(w.From):
		err = s.kv.Delete(ctx, id, jetstream.LastRevision(rev))
	default:
		w.Until = now.UTC()
		var b []byte
		if b, err = json.Marshal(w); err == nil {
			_, err = s.kv.Update(ctx, id, b, rev)
		}
	}
	if bus.IsConflict(err) {
		return w, fmt.Errorf("maintenance %s changed meanwhile; try again", id)
	}
	if err != nil {
		return w, fmt.Errorf("end maintenance %s: %w", id, err)
	}
	ev := events.New(id+"/ended", "tocsin", now, &events.MaintenanceEnded{Maintenance: id, Ended: now.UTC(), By: by})
	if err := s.bus.Publish(ctx, ev); err != nil {
		return w, fmt.Errorf("announce the end of maintenance %s: %w", id, err)
	}
	return w, nil
}

func (s *Store) get(ctx context.Context, id string) (events.MaintenanceSet, uint64, error) {
	var w events.MaintenanceSet
	if !events.ValidToken(id) {
		return w, 0, fmt.Errorf("%q is not a maintenance id", id)
	}
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return w, 0, fmt.Errorf("no maintenance window %s", id)
	}
	if err != nil {
		return w, 0, fmt.Errorf("read maintenance %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &w); err != nil {
		return w, 0, fmt.Errorf("maintenance %s is unreadable: %w", id, err)
	}
	return w, e.Revision(), nil
}

// List is every window kept, the soonest first.
func (s *Store) List(ctx context.Context) ([]events.MaintenanceSet, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list maintenance: %w", err)
	}
	var out []events.MaintenanceSet
	for key := range lister.Keys() {
		w, _, err := s.get(ctx, key)
		if err != nil {
			continue // deleted meanwhile
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b events.MaintenanceSet) int { return a.From.Compare(b.From) })
	return out, nil
}

// Sync makes the bucket hold the config's windows: new or changed ones are
// recorded and announced, and those gone from the config are ended (or
// withdrawn) as if by hand.
func (s *Store) Sync(ctx context.Context, cfg *config.Config, now time.Time, log *slog.Logger) error {
	var want []events.MaintenanceSet
	for _, m := range cfg.Maintenance {
		w, err := Window(cfg, ConfigID(m), m.Servers, m.From, m.Until, m.Reason, ByConfig)
		if err != nil {
			return fmt.Errorf("maintenance window in the config: %w", err)
		}
		want = append(want, w)
	}
	have, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, h := range have {
		if h.By != ByConfig {
			continue
		}
		keep := slices.ContainsFunc(want, func(w events.MaintenanceSet) bool { return w.Maintenance == h.Maintenance })
		if !keep && now.Before(h.Until) {
			if _, err := s.End(ctx, h.Maintenance, ByConfig, now); err != nil {
				return err
			}
			log.Info("maintenance window gone from the config: ended", "maintenance", h.Maintenance)
		}
	}
	for _, w := range want {
		id := w.Maintenance
		old, _, err := s.get(ctx, id)
		if err == nil && sameWindow(old, w) {
			continue
		}
		b, err := json.Marshal(w)
		if err != nil {
			return err
		}
		rev, err := s.kv.Put(ctx, id, b)
		if err != nil {
			return fmt.Errorf("record maintenance %s: %w", id, err)
		}
		if err := s.announce(ctx, w, rev); err != nil {
			return err
		}
		log.Info("maintenance window from the config", "maintenance", id, "servers", w.Servers, "public", w.Public)
	}
	return nil
}

func sameWindow(a, b events.MaintenanceSet) bool {
	a2, _ := json.Marshal(a)
	b2, _ := json.Marshal(b)
	return string(a2) == string(b2)
}

// Windows is the windows as last read from the bucket, kept current.
type Windows struct {
	mu       sync.RWMutex
	all      map[string]events.MaintenanceSet
	byServer map[string][]events.MaintenanceSet // asked for every result
	ready    chan struct{}
}

// Watch follows the bucket until ctx ends, and returns once the windows
// kept so far are read.
func (s *Store) Watch(ctx context.Context) (*Windows, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch maintenance: %w", err)
	}
	ws := &Windows{all: map[string]events.MaintenanceSet{}, byServer: map[string][]events.MaintenanceSet{}, ready: make(chan struct{})}
	go func() {
		defer w.Stop()
		for e := range w.Updates() {
			if e == nil {
				close(ws.ready)
				continue
			}
			ws.apply(e)
		}
	}()
	select {
	case <-ws.ready:
		return ws, nil
	case <-ctx.Done():
		return nil, errors.New("maintenance windows not read in time")
	}
}

func (ws *Windows) apply(e jetstream.KeyValueEntry) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var w events.MaintenanceSet
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &w) != nil {
		delete(ws.all, e.Key())
	} else {
		ws.all[e.Key()] = w
	}
	ws.byServer = map[string][]events.MaintenanceSet{}
	for _, w := range ws.all {
		for _, s := range w.Servers {
			ws.byServer[s] = append(ws.byServer[s], w)
		}
	}
}

// At is the reason of the window server is in at t ("planned maintenance"
// for one without a reason), or "" when it is in none.
func (ws *Windows) At(server string, t time.Time) string {
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	for _, w := range ws.byServer[server] {
		if w.In(server, t) {
			if w.Reason == "" {
				return "planned maintenance"
			}
			return w.Reason
		}
	}
	return ""
}
