// Package domains watches the registration of the domains the config
// names. A domain that lapses takes every site and mailbox on it down at
// once while every server still answers, so no check of a server sees it
// coming: each domain is looked up at its registry by RDAP, and one that
// expires within the config's warn_days, or has expired, opens a warning,
// which staff are emailed about once a day until it is renewed; never an
// SMS, never the public. A renewed domain resolves its warning.
//
// A lookup that fails opens and resolves nothing: an RDAP server that is
// down says nothing of the domain. It is logged, counted, and logged as an
// error once it has gone on for more than two rounds.
//
// Each domain's record in the tocsin-domains bucket holds its expiry as
// last read, its warning if one is open, and its failed lookups. An event
// is recorded before it is published, and marked published after, so that
// a crash between loses nothing; and a warning's id comes from the domain
// and its expiry date alone, so that another instance, or one restarted
// without its record, publishes the same message id, which JetStream
// stores once.
package domains

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/adapter/rdap"
	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source is what the watcher's events say produced them.
const Source = "domains"

// Box is the box a domain's warning names: no box of the config, for a
// domain is none of the fleet's servers.
const Box = "domains"

const (
	// parallel is how many lookups run at once: registries limit how
	// often one client asks, and a few at a time keeps a long list short.
	parallel = 4
	// failuresBeforeError is how many lookups of a domain must fail in a
	// row, over more than two rounds, before it is logged as an error:
	// one failure is an RDAP server's bad minute, this many is a domain
	// whose expiry nobody knows.
	failuresBeforeError = 3
	// attempts bounds the compare-and-set retries of one record.
	attempts = 10
	// maxError bounds what a record keeps of a failed lookup's error.
	maxError = 512
)

// Deps are what the watcher needs from outside, as every service.
type Deps = platform.Deps

// Service watches the domains of the config.
type Service struct {
	names   []string
	warn    time.Duration
	every   time.Duration
	timeout time.Duration
	bus     *bus.Bus
	log     *slog.Logger
	now     func() time.Time
	m       *metrics.Metrics
	rdap    *rdap.Client
}

// Option adjusts the service.
type Option func(*Service)

// WithEvery sets how often each domain is looked up, instead of the
// config's domains.every.
func WithEvery(d time.Duration) Option { return func(s *Service) { s.every = d } }

// WithLookupTimeout bounds one lookup: the bootstrap file, the registry
// and the registrar it may send to, redirects and all (default 1m).
func WithLookupTimeout(d time.Duration) Option { return func(s *Service) { s.timeout = d } }

// New returns the watcher of cfg's domains.
func New(cfg *config.Config, deps Deps, opts ...Option) *Service {
	deps = deps.WithDefaults()
	deps.Metrics.Expect(Source) // no durable consumer: ready once its bucket is open
	d := cfg.Domains
	s := &Service{
		names: slices.Clone(d.Names), warn: time.Duration(d.WarnDays) * 24 * time.Hour, every: d.Every.D(), timeout: time.Minute,
		bus: deps.Bus, log: deps.Log.With("service", Source), now: deps.Now, m: deps.Metrics,
	}
	for _, o := range opts {
		o(s)
	}
	s.rdap = rdap.New(rdap.Options{BootstrapURL: d.RDAPBootstrap, Now: deps.Now})
	return s
}

// Run looks every domain up at once and then every round, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kv, err := s.bus.KV(ctx, events.BucketDomains)
	if err != nil {
		return err
	}
	s.m.Started(Source)
	if len(s.names) == 0 {
		s.log.Info("no domains to watch")
	}
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		s.round(ctx, kv)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// round looks each domain up, a few at a time, then lets go of the
// domains the config no longer names.
func (s *Service) round(ctx context.Context, kv jetstream.KeyValue) {
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, name := range s.names {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			s.check(ctx, kv, name)
		})
	}
	wg.Wait()
	if ctx.Err() == nil {
		s.forget(ctx, kv)
	}
}

// record is what the domains bucket holds for one domain.
type record struct {
	Domain  string    `json:"domain"`
	Expiry  time.Time `json:"expiry,omitzero"`   // as the registry last said
	Read    time.Time `json:"read,omitzero"`     // when it last said so
	Warning *warning  `json:"warning,omitempty"` // the warning open, if any
	// Failures counts the lookups failed in a row, since FailingSince;
	// Error is what the last one said.
	Failures     int       `json:"failures,omitempty"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	Error        string    `json:"error,omitempty"`
	// Pending is an event decided and recorded, perhaps not yet published.
	Pending *outgoing `json:"pending,omitempty"`
}

// warning is a domain's open warning.
type warning struct {
	Incident string    `json:"incident"`
	Opened   time.Time `json:"opened"`
	Title    string    `json:"title"`
	Expiry   time.Time `json:"expiry"` // the expiry it warned of
}

// outgoing is an event as it is published.
type outgoing struct {
	Subject string          `json:"subject"`
	ID      string          `json:"id"`
	Data    json.RawMessage `json:"data"`
}

// Key is where a domain's record is kept: the domain with its dots made
// underscores, which a name of letters, digits and hyphens keeps
// one-to-one. It is also the "server" its warning names.
func Key(domain string) string { return strings.ReplaceAll(domain, ".", "_") }

// check looks one domain up and records what it found.
func (s *Service) check(ctx context.Context, kv jetstream.KeyValue, name string) {
	log := s.log.With("domain", name)
	lctx, cancel := context.WithTimeout(ctx, s.timeout)
	expiry, err := s.rdap.Expiry(lctx, name)
	cancel()
	if ctx.Err() != nil {
		return // stopping: the lookup was cut short, not failed
	}
	now := s.now()
	if err != nil {
		s.failed(ctx, kv, name, err, now, log)
		return
	}
	s.m.DomainLookup(metrics.LookupOK)
	s.m.DomainExpiry(name, expiry)
	var failures int
	o, err := s.update(ctx, kv, Key(name), func(rec *record) (*outgoing, error) {
		failures = rec.Failures
		rec.Domain, rec.Expiry, rec.Read = name, expiry, now
		rec.Failures, rec.FailingSince, rec.Error = 0, time.Time{}, ""
		return s.decide(rec, name, expiry, now)
	})
	if err != nil {
		log.Warn("domain looked up, but its record could not be kept; trying again next round", "expiry", expiry, "err", err)
		return
	}
	if failures > 0 {
		log.Info("domain looked up again after failed lookups", "failures", failures, "expiry", expiry)
	}
	s.told(o, log)
}

// decide opens a warning for a domain that expires within warn_days and
// has none, and resolves the one of a domain renewed beyond; it returns
// the event to publish, if any.
func (s *Service) decide(rec *record, name string, expiry, now time.Time) (*outgoing, error) {
	soon := expiry.Sub(now) <= s.warn
	switch {
	case soon && rec.Warning == nil:
		id := IncidentID(name, expiry)
		title := Title(name, expiry, now)
		rec.Warning = &warning{Incident: id, Opened: now, Title: title, Expiry: expiry}
		return event(id+"/opened", now, &events.IncidentOpened{
			Incident: id, Opened: now, Title: title, Severity: events.SeverityWarning,
			Servers: []events.AffectedServer{{Server: Key(name), Box: Box, Check: "rdap://" + name, Since: now, Reason: title}},
		})
	case !soon && rec.Warning != nil:
		w := rec.Warning
		rec.Warning = nil
		return event(w.Incident+"/resolved", now, &events.IncidentResolved{
			Incident: w.Incident, Opened: w.Opened, Resolved: now, Title: w.Title,
			Servers: []string{Key(name)}, Severity: events.SeverityWarning,
		})
	}
	return nil, nil
}

// failed records a failed lookup, which opens and resolves nothing.
func (s *Service) failed(ctx context.Context, kv jetstream.KeyValue, name string, lookup error, now time.Time, log *slog.Logger) {
	notFound := errors.Is(lookup, rdap.ErrNotFound)
	if notFound {
		s.m.DomainLookup(metrics.LookupNotFound)
	} else {
		s.m.DomainLookup(metrics.LookupFailed)
	}
	var rec record
	if _, err := s.update(ctx, kv, Key(name), func(r *record) (*outgoing, error) {
		r.Domain = name
		if r.Failures == 0 {
			r.FailingSince = now
		}
		r.Failures++
		r.Error = lookup.Error()
		if len(r.Error) > maxError {
			r.Error = r.Error[:maxError] + "…"
		}
		rec = *r
		return nil, nil
	}); err != nil {
		log.Warn("domain lookup failed, and its record could not be kept", "lookup_err", lookup, "err", err)
		return
	}
	what := "domain lookup failed; its expiry is looked up again next round"
	if notFound {
		what = "the registry does not know the domain: it may have lapsed and been deleted, or its name in the config is wrong"
	}
	args := []any{"err", lookup, "failures", rec.Failures, "failing_since", rec.FailingSince}
	if !rec.Expiry.IsZero() {
		args = append(args, "last_expiry", rec.Expiry, "last_read", rec.Read)
	}
	if rec.Failures >= failuresBeforeError && now.Sub(rec.FailingSince) > 2*s.every {
		log.Error(what+"; nobody knows when it expires until someone looks", args...)
		return
	}
	log.Warn(what, args...)
}

// forget lets go of the domains the config no longer names: an open
// warning is resolved, for nobody watches it any more, and the record goes.
func (s *Service) forget(ctx context.Context, kv jetstream.KeyValue) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoKeysFound) {
			s.log.Warn("cannot list the domains' records", "err", err)
		}
		return
	}
	watched := map[string]bool{}
	for _, name := range s.names {
		watched[Key(name)] = true
	}
	var gone []string
	for key := range keys.Keys() {
		if !watched[key] && !slices.Contains(gone, key) {
			gone = append(gone, key)
		}
	}
	for _, key := range gone {
		log := s.log.With("record", key)
		now := s.now()
		o, err := s.update(ctx, kv, key, func(rec *record) (*outgoing, error) {
			w := rec.Warning
			if w == nil {
				return nil, nil
			}
			rec.Warning = nil
			return event(w.Incident+"/resolved", now, &events.IncidentResolved{
				Incident: w.Incident, Opened: w.Opened, Resolved: now, Title: w.Title,
				Servers: []string{key}, Withdrawn: []string{key}, Severity: events.SeverityWarning,
			})
		})
		if err != nil {
			log.Warn("domain no longer in the config, but its record could not be closed; trying again next round", "err", err)
			continue
		}
		s.told(o, log)
		var rec record
		rev, err := bus.GetJSON(ctx, kv, key, &rec)
		if err != nil || rev == 0 || rec.Warning != nil || rec.Pending != nil {
			continue // written since, or still to publish: next round
		}
		if err := kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && !bus.IsConflict(err) {
			log.Warn("cannot remove the record of a domain no longer in the config", "err", err)
			continue
		}
		log.Info("domain no longer in the config: its record is removed")
	}
}

// update applies change to a domain's record under compare-and-set,
// records the event it returns, publishes it and marks it published. An
// event a crash left unpublished is published first. It returns the event
// published, if any.
func (s *Service) update(ctx context.Context, kv jetstream.KeyValue, key string, change func(*record) (*outgoing, error)) (*outgoing, error) {
	for range attempts {
		var rec record
		rev, err := bus.GetJSON(ctx, kv, key, &rec)
		if err != nil {
			return nil, err
		}
		if p := rec.Pending; p != nil {
			if err := s.publish(ctx, *p); err != nil {
				return nil, err
			}
			rec.Pending = nil
		}
		o, err := change(&rec)
		if err != nil {
			return nil, err
		}
		rec.Pending = o
		rev, err = bus.PutJSON(ctx, kv, key, rec, rev)
		if bus.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if o == nil {
			return nil, nil
		}
		if err := s.publish(ctx, *o); err != nil {
			return nil, err // recorded: the next look at the record publishes it
		}
		rec.Pending = nil
		// Not marked, it is published again later, which JetStream's
		// de-duplication absorbs.
		_, _ = bus.PutJSON(ctx, kv, key, rec, rev)
		return o, nil
	}
	return nil, fmt.Errorf("record %s kept changing", key)
}

// publish stores an event with its id as the message id, so that
// publishing it again stores it once.
func (s *Service) publish(ctx context.Context, o outgoing) error {
	m := nats.NewMsg(o.Subject)
	m.Data = o.Data
	if _, err := s.bus.JS.PublishMsg(ctx, m, jetstream.WithMsgID(o.ID)); err != nil {
		return fmt.Errorf("publish %s: %w", o.ID, err)
	}
	return nil
}

// told logs and counts a warning opened or resolved.
func (s *Service) told(o *outgoing, log *slog.Logger) {
	switch {
	case o == nil:
	case strings.HasSuffix(o.ID, "/opened"):
		s.m.IncidentOpened()
		log.Warn("domain expires soon: warning opened", "incident", strings.TrimSuffix(o.ID, "/opened"))
	default:
		s.m.IncidentResolved()
		log.Info("domain warning resolved", "incident", strings.TrimSuffix(o.ID, "/resolved"))
	}
}

// event wraps a payload for publishing.
func event(id string, at time.Time, p events.Payload) (*outgoing, error) {
	ev := events.New(id, Source, at, p)
	b, err := ev.Marshal()
	if err != nil {
		return nil, err
	}
	return &outgoing{Subject: ev.Subject(), ID: ev.ID, Data: b}, nil
}

// IncidentID is the id of the warning that domain expires at expiry: the
// day it expires and a code from the domain and that day. It depends on
// nothing else, so that every instance, before and after a restart, gives
// the same warning the same id.
func IncidentID(domain string, expiry time.Time) string {
	day := expiry.UTC().Format("20060102")
	sum := sha256.Sum256([]byte("domain/" + domain + "/" + day))
	return day + "-" + strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:6])
}

// Title says when domain expires, seen at now, in whole days of the
// calendar (UTC).
func Title(domain string, expiry, now time.Time) string {
	day := expiry.UTC().Format("2006-01-02")
	if !expiry.After(now) {
		return fmt.Sprintf("Domain %s expired on %s", domain, day)
	}
	switch days := int(midnight(expiry).Sub(midnight(now)) / (24 * time.Hour)); days {
	case 0:
		return fmt.Sprintf("Domain %s expires today (%s)", domain, day)
	case 1:
		return fmt.Sprintf("Domain %s expires tomorrow (%s)", domain, day)
	default:
		return fmt.Sprintf("Domain %s expires in %d days (%s)", domain, days, day)
	}
}

func midnight(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
