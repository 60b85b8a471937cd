// Package watchdog tells a dead man's switch outside Tocsin
// (healthchecks.io, Cronitor, Better Stack, or any service of the same
// convention) that the pipeline works, or which part of it stopped.
//
// Each interval the scheduler issues a canary at every location, which a
// prober answers, the verifier judges and the notifier decides on without
// telling anyone, each stage recording its part (see events.CanaryServer).
// The watchdog reads those records every interval: while every stage
// carried the canary of the last interval it pings the switch's URL; when
// one did not, it calls <URL>/fail with the reason ("verifier: no canary
// judged since 03:12:05 UTC (3 intervals)"). When the box dies, or the
// process is frozen, the calls stop, and the switch raises the alarm on
// its own: that is what the switch is for.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tocsin-alarm/tocsin/internal/canary"
	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/redact"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Source names the watchdog in logs and readiness.
const Source = "watchdog"

// Deps are what the watchdog needs from outside, as every service.
type Deps = platform.Deps

// Watchdog judges the canary's progress and tells the switch.
type Watchdog struct {
	cfg    *config.Config
	w      config.Watchdog
	deps   Deps
	log    *slog.Logger
	client *http.Client
	calls  *prometheus.CounterVec
}

// New returns the watchdog of cfg.Watchdog, which must be set.
func New(cfg *config.Config, deps Deps) (*Watchdog, error) {
	if cfg.Watchdog == nil {
		return nil, errors.New("no watchdog in the config")
	}
	deps = deps.WithDefaults()
	deps.Metrics.Expect(Source) // no durable consumer: ready once its bucket is open
	w := *cfg.Watchdog
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_watchdog_calls_total",
		Help: "Calls to the dead man's switch, by call (ping, fail) and outcome (ok, error).",
	}, []string{"call", "outcome"})
	if err := deps.Metrics.Registry().Register(calls); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		calls = are.ExistingCollector.(*prometheus.CounterVec)
	}
	return &Watchdog{
		cfg: cfg, w: w, deps: deps, calls: calls,
		log: deps.Log.With("service", Source, "switch", redact.URL(w.Ping.Reveal())),
		client: &http.Client{
			Timeout: w.Timeout.D(),
			// A switch answers; it does not send us elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// Run tells the switch, every interval, until ctx ends.
func (wd *Watchdog) Run(ctx context.Context) error {
	kv, err := wd.deps.Bus.KV(ctx, events.BucketCanary)
	if err != nil {
		return err
	}
	wd.deps.Metrics.Started(Source)
	every := wd.w.Every.D()
	started := wd.deps.Now()
	last := started
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if now := wd.deps.Now(); now.Sub(last) > 2*every {
			// This process itself stood still (frozen, suspended, starved):
			// every stage of it did, and none is to blame. Give them time
			// to catch up, as at start.
			wd.log.Warn("this process stood still; the canary is judged again from now", "for", now.Sub(last).Round(time.Millisecond))
			started = now
		}
		last = wd.deps.Now()
		wd.tick(ctx, kv, started)
	}
}

// tick judges the canary once and tells the switch. A call that fails is
// logged and counted; the next tick calls again.
func (wd *Watchdog) tick(ctx context.Context, kv jetstream.KeyValue, started time.Time) {
	every := wd.w.Every.D()
	now := wd.deps.Now()
	v, err := wd.judge(ctx, kv, now)
	if err != nil {
		v = Verdict{Reason: "bus: cannot read the canary's progress: " + err.Error()}
	}
	switch {
	case v.Healthy:
		wd.call(ctx, "ping", wd.w.Ping.Reveal(), "ok: the canary went through every stage")
	case v.Reason == "":
		wd.log.Info("no canary through yet; the switch is not told")
	case now.Sub(started) < 3*every:
		// Every stage starts afresh with the process: give the canary
		// time to go through before calling it stuck.
		wd.log.Info("the canary is not through yet", "reason", v.Reason)
	default:
		wd.log.Warn("the pipeline is stuck; telling the switch", "reason", v.Reason)
		wd.call(ctx, "fail", failURL(wd.w.Ping.Reveal()), v.Reason)
	}
}

func (wd *Watchdog) judge(ctx context.Context, kv jetstream.KeyValue, now time.Time) (Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, wd.w.Every.D()/2)
	defer cancel()
	lanes := map[string]Lane{}
	for _, loc := range wd.cfg.Locations {
		lane, err := canary.Read(ctx, kv, loc)
		if err != nil {
			return Verdict{}, err
		}
		lanes[loc] = lane
	}
	return Judge(now, wd.w.Every.D(), lanes), nil
}

// maxBody bounds what is sent and read: healthchecks.io keeps the first
// 100 kB of a body, and a reason is a line or two.
const maxBody = 10 << 10

// call POSTs body to the switch, within the configured timeout.
func (wd *Watchdog) call(ctx context.Context, kind, to, body string) {
	if len(body) > maxBody {
		body = events.Clip(body, maxBody)
	}
	err := wd.post(ctx, to, body)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		wd.log.Warn("the switch was not told; trying again at the next tick", "call", kind, "err", err)
	}
	wd.calls.WithLabelValues(kind, outcome).Inc()
}

func (wd *Watchdog) post(ctx context.Context, to, body string) error {
	ctx, cancel := context.WithTimeout(ctx, wd.w.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, strings.NewReader(body))
	if err != nil {
		return errors.New("the switch's url is not usable") // never the url itself
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	req.Header.Set("User-Agent", "tocsin-watchdog")
	resp, err := wd.client.Do(req)
	if err != nil {
		return scrub(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the switch answered %s", resp.Status)
	}
	return nil
}

// scrub keeps an error from net/http from carrying the URL, which holds
// the switch's token.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return fmt.Errorf("%s failed: %w", ue.Op, ue.Err)
	}
	return errors.New("call failed")
}

// failURL is where a failure is reported: the URL's path with /fail added.
func failURL(ping string) string {
	return strings.TrimSuffix(ping, "/") + "/fail"
}
