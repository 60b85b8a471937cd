// Package push is the push service: servers that cannot be reached from
// outside (a nightly backup of email, a cron job) report in to it instead
// of being checked. A job calls /push/<token> when it has run, or
// /push/<token>/fail with a message when it ran and failed; the service
// publishes each report on probe.result.<server>.push, and when a server has
// not reported within push.every and push.grace of its last report it
// publishes that the deadline was missed. The verifier judges these as it
// judges probe results, without asking other locations: there is
// nothing to check again.
//
// Each server's last report and deadline live in the tocsin-push bucket,
// so a restarted service keeps every deadline: one that passed while the
// service was watching is a miss, published again after a crash (the
// same message id, and a time the verifier has judged already); one that
// passed while no push service was running, when a job's report could
// not have been heard, gives the job one full every and grace from the
// restart, as a server never heard from gets from the first start.
package push

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source is what the push service's events say produced them.
const Source = "push"

// aliveKey holds when a push service last looked at the deadlines: one
// that passed before it was watched; one after, perhaps not. No server id
// starts with '_'.
const aliveKey = "_alive"

// attempts bounds the compare-and-set retries of one record.
const attempts = 10

// Deps are what the service needs from outside, as every service.
type Deps = platform.Deps

// job is one push server of the config.
type job struct {
	server   string
	token    string
	deadline time.Duration // every + grace
	every    time.Duration
	grace    time.Duration
}

// Service takes reports and watches deadlines.
type Service struct {
	cfg  *config.Config
	bus  *bus.Bus
	log  *slog.Logger
	now  func() time.Time
	m    *metrics.Metrics
	jobs map[[32]byte]*job // by the SHA-256 of the token: a lookup that times nothing of the token
	list []*job
	ln   net.Listener
	tick time.Duration

	mu sync.Mutex // one report or deadline at a time per process: a few a day per job
}

// Option adjusts the service.
type Option func(*Service)

// WithListener serves on ln instead of listening on push.listen.
func WithListener(ln net.Listener) Option { return func(s *Service) { s.ln = ln } }

// WithTick sets how often deadlines are looked at (default 1s).
func WithTick(d time.Duration) Option { return func(s *Service) { s.tick = d } }

// New returns the push service of cfg's push servers.
func New(cfg *config.Config, deps Deps, opts ...Option) *Service {
	deps = deps.WithDefaults()
	deps.Metrics.Expect(Source) // no durable consumer: ready once it serves
	s := &Service{
		cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", Source), now: deps.Now, m: deps.Metrics,
		jobs: map[[32]byte]*job{}, tick: time.Second,
	}
	for _, t := range cfg.Targets() {
		if p := t.Server.Push; p != nil {
			j := &job{server: t.Server.ID, token: p.Token.Reveal(), deadline: p.Deadline(), every: p.Every.D(), grace: p.Grace.D()}
			s.jobs[sha256.Sum256([]byte(j.token))] = j
			s.list = append(s.list, j)
		}
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// record is what the bucket keeps of one push server.
type record struct {
	// Last is when it last reported; zero if never.
	Last time.Time `json:"last,omitzero"`
	// Armed is when the service began to wait for it without a report:
	// its first start, or a restart after its deadline passed unwatched.
	Armed time.Time `json:"armed,omitzero"`
	// Deadline is when it must have reported by.
	Deadline time.Time `json:"deadline"`
	// Missed says the deadline passed and was published as missed.
	Missed bool `json:"missed,omitempty"`
}

// Run takes reports and watches deadlines until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kv, err := s.bus.KV(ctx, events.BucketPush)
	if err != nil {
		return err
	}
	if len(s.list) == 0 {
		// Nothing reports in: no port is opened for nobody to call.
		s.log.Info("no push servers; not listening")
		s.m.Started(Source)
		<-ctx.Done()
		return nil
	}
	if err := s.resume(ctx, kv); err != nil {
		return err
	}
	errs := make(chan error, 1)
	go func() { errs <- s.serve(ctx, kv) }()
	s.m.Started(Source)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-errs
		case err := <-errs:
			return err
		case <-t.C:
			s.watch(ctx, kv)
		}
	}
}

// resume reads every push server's record at start: a server never seen
// is given one full every and grace from now; a deadline that passed while
// nobody watched, the same; one that passed while a push service watched
// is missed, and a miss recorded is published again, in case the last
// service stopped between the record and the message.
func (s *Service) resume(ctx context.Context, kv jetstream.KeyValue) error {
	now := s.now()
	var alive time.Time
	if _, err := bus.GetJSON(ctx, kv, aliveKey, &alive); err != nil {
		return err
	}
	for _, j := range s.list {
		var rec record
		rev, err := bus.GetJSON(ctx, kv, j.server, &rec)
		if err != nil {
			return err
		}
		base := rec.Last
		if base.IsZero() || rec.Armed.After(base) {
			base = rec.Armed
		}
		if !rec.Missed {
			switch {
			case base.IsZero():
				rec = record{Armed: now, Deadline: now.Add(j.deadline)}
				s.log.Info("push server never heard from: waiting one full every and grace", "server", j.server, "deadline", rec.Deadline)
			case base.Add(j.deadline).After(now) || !base.Add(j.deadline).After(alive):
				// Still to come (every and grace may have changed), or
				// passed while watched: the next look misses it.
				rec.Deadline = base.Add(j.deadline)
			default:
				rec.Armed, rec.Deadline = now, now.Add(j.deadline)
				s.log.Warn("push server's deadline passed while no push service ran to hear it: waiting one full every and grace", "server", j.server, "deadline", rec.Deadline)
			}
			if _, err := bus.PutJSON(ctx, kv, j.server, rec, rev); err != nil {
				return err
			}
			continue
		}
		if err := s.publishMiss(ctx, j, rec); err != nil {
			return err
		}
	}
	return s.beat(ctx, kv, now)
}

// beat records that the deadlines were looked at up to now.
func (s *Service) beat(ctx context.Context, kv jetstream.KeyValue, now time.Time) error {
	b, err := jsonTime(now)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, aliveKey, b); err != nil {
		return fmt.Errorf("write %s: %w", aliveKey, err)
	}
	return nil
}

// watch misses every deadline that has passed, then says it looked.
func (s *Service) watch(ctx context.Context, kv jetstream.KeyValue) {
	now := s.now()
	for _, j := range s.list {
		if err := s.check(ctx, kv, j, now); err != nil && ctx.Err() == nil {
			s.log.Warn("could not look at a push deadline; the next look will", "server", j.server, "err", err)
			return // not beat: a deadline not looked at was not watched
		}
	}
	if err := s.beat(ctx, kv, now); err != nil && ctx.Err() == nil {
		s.log.Warn("could not record the deadlines looked at", "err", err)
	}
}

// check misses j's deadline if it has passed: recorded first, then
// published, so a crash between is published again at the next start.
func (s *Service) check(ctx context.Context, kv jetstream.KeyValue, j *job, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range attempts {
		var rec record
		rev, err := bus.GetJSON(ctx, kv, j.server, &rec)
		if err != nil {
			return err
		}
		if rec.Missed || rec.Deadline.IsZero() || rec.Deadline.After(now) {
			return nil
		}
		rec.Missed = true
		if _, err := bus.PutJSON(ctx, kv, j.server, rec, rev); bus.IsConflict(err) {
			continue
		} else if err != nil {
			return err
		}
		s.m.PushReport(metrics.PushMissed)
		s.log.Info("push server missed its deadline", "server", j.server, "deadline", rec.Deadline)
		return s.publishMiss(ctx, j, rec)
	}
	return fmt.Errorf("record of %s: too many writers at once", j.server)
}

func (s *Service) publishMiss(ctx context.Context, j *job, rec record) error {
	reason := fmt.Sprintf("no report for %s (every %s, grace %s)", human(j.deadline), human(j.every), human(j.grace))
	if !rec.Last.IsZero() {
		reason += "; last report " + rec.Last.UTC().Format("2006-01-02 15:04 MST")
	} else {
		reason += "; never reported"
	}
	rep := &events.PushReport{Server: j.server, Outcome: events.PushMissed, At: rec.Deadline, Reason: events.Clip(reason, events.MaxReason)}
	return s.bus.Publish(ctx, events.New(fmt.Sprintf("%s/missed/%d", j.server, rec.Deadline.UnixMilli()), Source, rec.Deadline, rep))
}

// report records that j reported at now, then publishes it: a report the
// bucket does not hold would leave the old deadline to fire.
func (s *Service) report(ctx context.Context, kv jetstream.KeyValue, j *job, outcome, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for range attempts {
		var rec record
		rev, err := bus.GetJSON(ctx, kv, j.server, &rec)
		if err != nil {
			return err
		}
		if !rec.Last.IsZero() && !now.After(rec.Last) {
			now = rec.Last.Add(time.Millisecond) // each report later than the last, so none is judged stale
		}
		rec = record{Last: now, Deadline: now.Add(j.deadline)}
		if _, err := bus.PutJSON(ctx, kv, j.server, rec, rev); bus.IsConflict(err) {
			continue
		} else if err != nil {
			return err
		}
		rep := &events.PushReport{Server: j.server, Outcome: outcome, At: now, Reason: reason}
		return s.bus.Publish(ctx, events.New(fmt.Sprintf("%s/%s/%d", j.server, outcome, now.UnixNano()), Source, now, rep))
	}
	return fmt.Errorf("record of %s: too many writers at once", j.server)
}

// human is a duration as people write it: 24h, 1h30m, 45s.
func human(d time.Duration) string {
	s := d.Round(time.Second).String()
	for _, z := range []string{"m0s", "h0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z {
			s = s[:len(s)-len(z)+1]
		}
	}
	return s
}
