// Package selfwatch is the alarm watching itself. Every few seconds it
// looks at what `tocsin status` shows (internal/readmodel/pipeline): a
// prober location gone silent, an expected service nobody runs or whose
// instances all stand by, a consumer falling behind, messages being set
// aside as dead letters, a provider the notifier finds refusing every
// message, instances running different configs. A trouble found on
// raise_after looks in a row raises a self alert, which the notifier
// sends to the person on call by the channels that still work; one gone
// for clear_after looks clears it. Self alerts travel on self.>, which no
// public service reads: they never reach the status page, the
// datacentre, the social networks, the banner or failover.
//
// In a cluster every instance looks, and one acts: the one whose write of
// the state record (tocsin-self, key "state") last succeeded. The others
// stand by, and take over once the record has not changed for three
// looks. Writes are compare-and-set, so two never act on the same look;
// the events are recorded before they are published and their ids come
// from the alert, so a crash between neither loses nor doubles one.
package selfwatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source is what the watcher's events say produced them.
const Source = "selfwatch"

// Deps are what the watcher needs from outside, as every service.
type Deps = platform.Deps

// Service watches the alarm's own parts.
type Service struct {
	cfg      *config.Config
	bus      *bus.Bus
	log      *slog.Logger
	now      func() time.Time
	m        *metrics.Metrics
	every    time.Duration
	discover time.Duration
	expected map[string][]string
	id       string
}

// Option adjusts a watcher.
type Option func(*Service)

// WithEvery looks this often instead of selfwatch.every: tests look
// faster than a config may.
func WithEvery(d time.Duration) Option { return func(s *Service) { s.every = d } }

// WithExpected says which services should run: by name, with the
// locations of a service that runs per location ("prober": [lon1, nyc1]).
// An expected service nobody runs raises an alert. Without it only
// services whose instances all stand by do.
func WithExpected(want map[string][]string) Option {
	return func(s *Service) { s.expected = want }
}

// New returns a watcher for the alarm cfg describes.
func New(cfg *config.Config, deps Deps, opts ...Option) *Service {
	deps = deps.WithDefaults()
	deps.Metrics.Expect(Source)
	var b [6]byte
	_, _ = rand.Read(b[:])
	s := &Service{cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", Source), now: deps.Now, m: deps.Metrics,
		every: cfg.Selfwatch.Every.D(), discover: time.Second, id: hex.EncodeToString(b[:])}
	for _, o := range opts {
		o(s)
	}
	s.discover = min(s.discover, s.every/2)
	return s
}

// record is the watcher's state, in BucketSelf under SelfStateKey.
type record struct {
	Holder string            `json:"holder"` // the instance acting
	Alerts map[string]*alert `json:"alerts"`
	// Pending are events recorded and not yet known published.
	Pending []pending `json:"pending,omitempty"`
	// Heard is when each location was last heard live.
	Heard map[string]time.Time `json:"heard,omitempty"`
	// Dead is the dead letters counted at the last look, DeadGrew when
	// their number last grew; Counted says Dead is known.
	Dead     uint64    `json:"dead"`
	DeadGrew time.Time `json:"dead_grew,omitzero"`
	Counted  bool      `json:"counted,omitempty"`
}

type pending struct {
	Raised  *events.SelfRaised  `json:"raised,omitempty"`
	Cleared *events.SelfCleared `json:"cleared,omitempty"`
}

func (p pending) payload() events.Payload {
	if p.Raised != nil {
		return p.Raised
	}
	return p.Cleared
}

// takeOverLooks is how many looks the state may go unchanged before a
// standby takes over from the instance that wrote it last.
const takeOverLooks = 3

// Run looks every s.every until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kv, err := s.bus.KV(ctx, events.BucketSelf)
	if err != nil {
		return err
	}
	s.m.Started(Source)
	s.log.Info("watching the alarm itself", "every", s.every)
	var lastRev uint64
	changed := s.now()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if err := s.look(ctx, kv, &lastRev, &changed); err != nil && ctx.Err() == nil {
			s.log.Warn("could not look at the alarm; looking again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// look is one look: read the state, act if this instance holds it or its
// holder has gone quiet, and write it back.
func (s *Service) look(ctx context.Context, kv jetstream.KeyValue, lastRev *uint64, changed *time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.every, 5*time.Second))
	defer cancel()
	var rec record
	rev, err := bus.GetJSON(ctx, kv, events.SelfStateKey, &rec)
	if err != nil {
		return err
	}
	now := s.now()
	if rev != *lastRev {
		*lastRev, *changed = rev, now
	}
	if rev != 0 && rec.Holder != s.id && now.Sub(*changed) < takeOverLooks*s.every {
		return nil // another instance acts; stand by
	}
	if rec.Holder != s.id && rev != 0 {
		s.log.Info("taking over watching the alarm", "from", rec.Holder)
	}
	rec.Holder = s.id
	if rec.Alerts == nil {
		rec.Alerts = map[string]*alert{}
	}
	if err := s.publish(ctx, rec.Pending); err != nil {
		return err
	}
	rec.Pending = nil
	found, err := s.observe(ctx, kv, &rec, now)
	if err != nil {
		return err
	}
	for _, p := range judge(rec.Alerts, found, now, s.cfg.Selfwatch.RaiseAfter, s.cfg.Selfwatch.ClearAfter) {
		switch p := p.(type) {
		case *events.SelfRaised:
			rec.Pending = append(rec.Pending, pending{Raised: p})
			s.log.Error("self alert: "+p.Title, "alert", p.Alert, "kind", p.Kind, "what", p.What)
		case *events.SelfCleared:
			rec.Pending = append(rec.Pending, pending{Cleared: p})
			s.log.Info("self alert cleared: "+p.Title, "alert", p.Alert, "kind", p.Kind, "what", p.What)
		}
	}
	next, err := bus.PutJSON(ctx, kv, events.SelfStateKey, rec, rev)
	if bus.IsConflict(err) {
		return nil // another instance wrote first: it acts
	} else if err != nil {
		return err
	}
	*lastRev, *changed = next, now
	if err := s.publish(ctx, rec.Pending); err != nil {
		return err // published at the next look
	}
	if len(rec.Pending) > 0 {
		rec.Pending = nil
		if n, err := bus.PutJSON(ctx, kv, events.SelfStateKey, rec, next); err == nil {
			*lastRev = n
		}
	}
	return nil
}

func (s *Service) publish(ctx context.Context, ps []pending) error {
	for _, p := range ps {
		if p.Raised == nil && p.Cleared == nil {
			continue // unreadable
		}
		pl := p.payload()
		var id string
		var at time.Time
		switch e := pl.(type) {
		case *events.SelfRaised:
			id, at = e.Alert+"/raised", e.Raised
		case *events.SelfCleared:
			id, at = e.Alert+"/cleared", e.Cleared
		}
		if err := s.bus.Publish(ctx, events.New(id, Source, at, pl), jetstream.WithMsgID(id)); err != nil {
			return fmt.Errorf("publish %s: %w", id, err)
		}
	}
	return nil
}

// observe finds what is wrong now.
func (s *Service) observe(ctx context.Context, kv jetstream.KeyValue, rec *record, now time.Time) ([]trouble, error) {
	var found []trouble
	var errs []error
	locs, err := s.locations(ctx, rec, now)
	found, errs = append(found, locs...), append(errs, err)
	svcs, err := s.services(ctx)
	found, errs = append(found, svcs...), append(errs, err)
	lag, err := s.backlog(ctx, rec, now)
	found, errs = append(found, lag...), append(errs, err)
	prov, err := s.providers(ctx, kv, now)
	found, errs = append(found, prov...), append(errs, err)
	return found, errors.Join(errs...)
}

// providers reads the notifier's record of each channel.
func (s *Service) providers(ctx context.Context, kv jetstream.KeyValue, now time.Time) ([]trouble, error) {
	var found []trouble
	after := s.cfg.Selfwatch.ProviderAfter.D()
	for _, ch := range []string{"sms", "email", "voice"} {
		var h events.ProviderHealth
		if _, err := bus.GetJSON(ctx, kv, events.SelfProviderKey(ch), &h); err != nil {
			return nil, err
		}
		if !h.Failing || h.Since.IsZero() || now.Sub(h.Since) < after {
			continue
		}
		other, what := "SMS", "email"
		switch ch {
		case "email":
			other, what = "SMS", "email"
		case "sms":
			other, what = "email", "SMS"
		case "voice":
			other, what = "SMS and email", "voice calls"
		}
		found = append(found, trouble{Kind: events.SelfProvider, What: ch, Since: h.Since,
			Title:  fmt.Sprintf("%s by %s has failed every message since %s", what, h.Provider, clock(h.Since)),
			Action: fmt.Sprintf("is %s up, and are providers.%s's settings and credentials right? Staff are told by %s meanwhile. `tocsin status`", h.Provider, providerKey(ch), other),
			Detail: "Latest error: " + h.Error,
		})
	}
	return found, nil
}

func providerKey(ch string) string {
	if ch == "email" {
		return "smtp"
	}
	return "twilio"
}

// clock is a time as the alerts say it: the hour and minute in UTC, and
// the date when it is not today's.
func clock(t time.Time) string {
	return t.UTC().Format("15:04 UTC on 2 Jan")
}
