// Package verifier is the false-alarm filter: it judges every probe result,
// keeps each server's state in a key-value bucket, asks for a second check
// before believing a failure, and opens and resolves incidents. A restarted
// verifier carries on from the bucket where the last one stopped.
package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// Deps are what a verifier needs from outside.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	Now func() time.Time
}

// Verifier judges results.
type Verifier struct {
	cfg    *config.Config
	bus    *bus.Bus
	log    *slog.Logger
	now    func() time.Time
	policy judge.Policy
	// Workers judge results in parallel; results for one server stay in order.
	workers int
}

// New returns a verifier for the fleet in cfg.
func New(cfg *config.Config, deps Deps) *Verifier {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Verifier{
		cfg: cfg, bus: deps.Bus, now: deps.Now,
		log:     deps.Log.With("service", "verifier"),
		policy:  judge.Policy{ConfirmAfter: 2, RecoverAfter: cfg.Checks.RecoverAfter},
		workers: 16,
	}
}

// Run judges results until ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	kv, err := v.bus.KV(ctx, events.BucketServers)
	if err != nil {
		return err
	}
	return v.bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamResults,
		Name:    "verifier",
		Filter:  []string{events.SubjectProbeResults},
		Workers: v.workers,
		Key:     func(subject string) string { return subject },
		// A verifier deployed afresh need not judge a day of old results.
		Since: 10 * time.Minute,
	}, func(ctx context.Context, ev events.Event) error { return v.handle(ctx, kv, ev) })
}

func (v *Verifier) handle(ctx context.Context, kv jetstream.KeyValue, ev events.Event) error {
	r, ok := ev.Data.(*events.ProbeResult)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on a results subject", ev.Type))
	}
	target, ok := v.cfg.Target(r.Server)
	if !ok {
		v.log.Info("result for a server no longer in the config; ignored", "server", r.Server)
		return nil
	}
	log := v.log.With("server", r.Server)

	s, rev, err := load(ctx, kv, r.Server)
	if err != nil {
		return err
	}
	if judge.Stale(s, r) {
		return nil // redelivered or overtaken: already reflected
	}
	next, fx := judge.Apply(s, r, judge.Facts{Box: target.Box.ID, BoxName: target.Box.Name, Check: target.Server.Check}, v.policy)

	// Publish first, then record. Every id is derived from the state, so if
	// we die in between, the redelivered result publishes the same ids again
	// and JetStream keeps one of each.
	if fx.Recheck != "" {
		task := &events.ProbeTask{
			Server: r.Server, Location: r.Location, Check: target.Server.Check,
			TimeoutMS: target.Timeout.Milliseconds(), Due: v.now(), Purpose: events.PurposeRecheck,
		}
		if err := v.bus.Publish(ctx, events.New(fx.Recheck, "verifier", v.now(), task), jetstream.WithMsgTTL(max(target.Interval, time.Second))); err != nil {
			return err
		}
	}
	for _, c := range fx.Changes {
		if err := v.bus.Publish(ctx, events.New(c.ID, "verifier", c.Since, &c.ServerStateChanged)); err != nil {
			return err
		}
		log.Info("server state changed", "from", c.From, "to", c.To, "reason", c.Reason, "incident", c.Incident)
	}
	if o := fx.Opened; o != nil {
		if err := v.bus.Publish(ctx, events.New(o.Incident+"/opened", "verifier", o.Opened, o)); err != nil {
			return err
		}
		log.Warn("incident opened", "incident", o.Incident, "title", o.Title)
	}
	if r := fx.Resolved; r != nil {
		if err := v.bus.Publish(ctx, events.New(r.Incident+"/resolved", "verifier", r.Resolved, r)); err != nil {
			return err
		}
		log.Info("incident resolved", "incident", r.Incident, "after", r.Duration().Round(time.Second))
	}
	return store(ctx, kv, next, rev)
}

// load reads a server's state and the revision to update it at; 0 for a
// server never seen.
func load(ctx context.Context, kv jetstream.KeyValue, server string) (judge.Server, uint64, error) {
	e, err := kv.Get(ctx, server)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return judge.Server{}, 0, nil
	}
	if err != nil {
		return judge.Server{}, 0, fmt.Errorf("read state of %s: %w", server, err)
	}
	var s judge.Server
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		// A corrupt record must not stop judging: start this server afresh.
		return judge.Server{}, e.Revision(), nil
	}
	return s, e.Revision(), nil
}

// store writes the state only if nobody wrote it since rev; a lost race
// is retried by redelivery, against the newer state.
func store(ctx context.Context, kv jetstream.KeyValue, s judge.Server, rev uint64) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if rev == 0 {
		_, err = kv.Create(ctx, s.ID, b)
	} else {
		_, err = kv.Update(ctx, s.ID, b, rev)
	}
	if err != nil {
		return fmt.Errorf("record state of %s: %w", s.ID, err)
	}
	return nil
}
