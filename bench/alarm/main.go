// Command alarm measures how long an outage takes to reach the person on
// call: from the moment a server starts failing to the moment the Twilio
// stand-in accepts the SMS that says so. It runs the real services in one
// process, as `tocsin run` does on one box: an embedded JetStream server,
// three probers at three locations checking from three loopback addresses,
// the verifier, which confirms a failure from the two other locations, and
// the notifier, which pages the person on call by SMS and email.
//
// The target fails in one of two ways: its listener closes, so that
// connections are refused (-mode refuse), or it accepts connections and
// never answers, so that every check runs to its timeout (-mode hang).
// Each outage starts at a random point of the check interval, lasts until
// the DOWN SMS arrives, and ends with the target back and the RESOLVED SMS
// received, before the next one begins. With -mode second the target is
// the second server of a box of two: the first is refused and paged about
// (the service still answers), then the target is refused too, and the
// time is to the SMS that says the box is now down.
//
//	go run ./bench/alarm -mode refuse
//	go run ./bench/alarm -mode hang
//	go run ./bench/alarm -mode second -outages 10
//
// docs/benchmarks.md explains the figures and keeps the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
	"github.com/tocsin-alarm/tocsin/services/prober"
	"github.com/tocsin-alarm/tocsin/services/verifier"
)

// The fleet of the benchmark: one box of one server, watched from three
// locations, each checking from a loopback address of its own.
var (
	fleetLocations = []string{"lon1", "ams1", "nyc1"}
	fleetSources   = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
)

const (
	server      = "web1"
	firstServer = "web0" // -mode second: the server of the box down first
	onCall      = "Alice"
	onCallPh    = "+447700900001"
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioAuth  = "b3nchT0ken"
)

// goals are the medians each mode must stay within, failure to SMS.
//
// The second server of a box must be paged about within one check interval
// plus the confirmation: the 10s default interval and about a second.
var goals = map[string]time.Duration{modeRefuse: 6 * time.Second, modeHang: 26 * time.Second, modeSecond: 11 * time.Second}

type options struct {
	mode     string
	outages  int
	interval time.Duration
	timeout  time.Duration
	logLevel string
	spread   string
	seed     uint64
}

func main() {
	var o options
	flag.StringVar(&o.mode, "mode", modeRefuse, "how the target fails: refuse (connections refused), hang (connections accepted, never answered), or second (refused, the other server of its box down already)")
	flag.IntVar(&o.outages, "outages", 20, "outages to time")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "the check interval")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "the check timeout")
	flag.StringVar(&o.logLevel, "log-level", "warn", "the services' log level on stderr: debug, info, warn or error")
	flag.StringVar(&o.spread, "spread", "even", "where in the check interval outages start: even (spread evenly) or random")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the random start of each outage within the interval (0: a random seed)")
	flag.Parse()
	benchkit.Exit("bench/alarm", benchkit.Interruptible(func(ctx context.Context) error { return run(ctx, o, os.Stdout) }))
}

func (o *options) check() error {
	var errs []error
	if _, ok := goals[o.mode]; !ok {
		errs = append(errs, fmt.Errorf("-mode %q: use %s, %s or %s", o.mode, modeRefuse, modeHang, modeSecond))
	}
	if o.outages < 1 {
		errs = append(errs, errors.New("-outages must be at least 1"))
	}
	if o.interval < time.Second || o.timeout <= 0 || o.timeout > o.interval {
		errs = append(errs, errors.New("-interval must be at least 1s, and -timeout positive and at most the interval"))
	}
	if o.spread != "even" && o.spread != "random" {
		errs = append(errs, fmt.Errorf("-spread %q: use even or random", o.spread))
	}
	if o.seed == 0 {
		o.seed = rand.Uint64()
	}
	return errors.Join(errs...)
}

// untilPhase is how long to wait so that an outage starts phase before a
// scheduled check, given when the last one started: checks of a server
// come every interval, at the same point of it.
func untilPhase(last time.Time, interval, phase time.Duration, now time.Time) time.Duration {
	if last.IsZero() {
		return 0
	}
	next := last.Add(interval)
	for next.Sub(now) < phase+100*time.Millisecond {
		next = next.Add(interval)
	}
	return next.Add(-phase).Sub(now)
}

// fleetConfig is the config of the benchmark. Flap detection is off: it
// would rightly stop paging for a server that fails every half minute, and
// it plays no part in how fast a first outage is told. (The window and
// settle time are then not needed.)
func fleetConfig(o options, check, first string, mail *smtpserver.Server, tw *twilioapi.Server) string {
	servers := fmt.Sprintf("{id: %s, check: %q}", server, check)
	if first != "" {
		servers = fmt.Sprintf("{id: %s, check: %q}, ", firstServer, first) + servers
	}
	return fmt.Sprintf(`
site: {name: Example Hosting}
checks:
  interval: %s
  timeout: %s
  verify: {locations: 2, quorum: 2}
  recover_after: 1
  flapping: {changes: 0}
locations: [%s]
boxes:
  - {id: web, name: Web, servers: [%s]}
staff:
  - {name: %s, email: alice@example.net, phone: %q}
oncall: {rotation: [%s], handover: 2026-01-05T09:00:00Z}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alarm@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, api_url: %q}
`, o.interval, o.timeout, strings.Join(fleetLocations, ", "), servers, onCall, onCallPh, onCall, mail.Port, tw.URL)
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if err := o.check(); err != nil {
		return err
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("-log-level %q: use debug, info, warn or error", o.logLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))

	tg, err := newTarget(o.mode)
	if err != nil {
		return err
	}
	defer tg.Close()
	var first *target
	firstCheck := ""
	if o.mode == modeSecond {
		if first, err = newTarget(modeRefuse); err != nil {
			return err
		}
		defer first.Close()
		firstCheck = first.Check()
	}
	tw, err := twilioapi.New(twilioSID, twilioAuth)
	if err != nil {
		return err
	}
	defer tw.Close()
	mail, err := smtpserver.New(smtpserver.Options{})
	if err != nil {
		return err
	}
	defer mail.Close()

	env := map[string]string{"TWILIO_SID": twilioSID, "TWILIO_TOKEN": twilioAuth}
	cfg, err := config.Parse("bench.yaml", []byte(fleetConfig(o, tg.Check(), firstCheck, mail, tw)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return err
	}

	ns, stopNATS, err := benchkit.JetStream("alarm")
	if err != nil {
		return err
	}
	defer stopNATS()
	b, err := bus.Connect("", ns, "bench alarm services", log)
	if err != nil {
		return err
	}
	defer b.Close()
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := b.Ensure(setup, 1); err != nil {
		return fmt.Errorf("prepare streams: %w", err)
	}

	// The observer has a connection of its own, so that nothing it reads
	// queues behind the services' traffic.
	ob, err := bus.Connect("", ns, "bench alarm watch", log)
	if err != nil {
		return err
	}
	defer ob.Close()
	w, err := startWatch(setup, ob, server)
	if err != nil {
		return err
	}
	defer w.stop()
	lkv, err := ob.KV(setup, events.BucketLocations)
	if err != nil {
		return err
	}
	live, err := locations.Watch(ctx, lkv, time.Now, fleetLocations)
	if err != nil {
		return err
	}

	runners, err := services(cfg, b, log)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	for name, r := range runners {
		wg.Go(func() {
			if err := r(sctx); err != nil && sctx.Err() == nil {
				stop(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	defer func() {
		cause := context.Cause(sctx)
		stop(nil)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			log.Error("services did not stop within 30s")
		}
		if err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}()

	fmt.Fprintf(out, "mode %s: check %s every %s, timeout %s; locations %s from %s; re-checks from 2 other locations, quorum 2; %d outages, seed %d\n",
		o.mode, tg.Check(), o.interval, o.timeout, strings.Join(fleetLocations, ","), strings.Join(fleetSources, ","), o.outages, o.seed)

	// Ready: every location live, and the target seen up.
	if err := waitUntil(sctx, 2*time.Minute, "every location live and the target up", func() bool {
		return len(live.List()) == len(fleetLocations) && w.state() == events.StateUp
	}); err != nil {
		return err
	}
	// Outages are placed by the last scheduled check seen: wait for one,
	// as successes come batched, up to a second after their check.
	if o.spread == "even" {
		if err := waitUntil(sctx, 2*o.interval+5*time.Second, "a scheduled check seen", func() bool { return !w.lastScheduled().IsZero() }); err != nil {
			return err
		}
	}

	rng := rand.New(rand.NewPCG(o.seed, o.seed>>1|1))
	// Each wait is bounded by the slowest path: a check not due for an
	// interval, then a check and its re-checks each running to the timeout.
	limit := 2*o.interval + 3*o.timeout + 30*time.Second
	var samples []sample
	fmt.Fprintln(out, header)
	// Where in the check interval each outage starts: evenly spread (the
	// i-th of n starts (i+0.5)/n of an interval before a check, in a
	// shuffled order), so that the median measures the system and not the
	// luck of the draw; or at random, as outages come.
	phases := make([]time.Duration, o.outages)
	for i := range phases {
		phases[i] = time.Duration((float64(i) + 0.5) / float64(o.outages) * float64(o.interval))
	}
	rng.Shuffle(len(phases), func(i, j int) { phases[i], phases[j] = phases[j], phases[i] })
	for i := range o.outages {
		timed := "DOWN "
		if first != nil {
			// The first server down: paged about, the box still serving.
			first.Fail()
			if _, err := waitSMS(sctx, tw, len(tw.Messages()), "DOWN ", limit); err != nil {
				return fmt.Errorf("outage %d, the first server: %w", len(samples)+1, err)
			}
			timed = "NOW DOWN"
		}
		wait := time.Duration(rng.Int64N(int64(o.interval)))
		if o.spread == "even" {
			wait = untilPhase(w.lastScheduled(), o.interval, phases[i], time.Now())
		}
		select {
		case <-time.After(wait):
		case <-sctx.Done():
			return context.Cause(sctx)
		}
		n := len(tw.Messages())
		tg.Fail()
		start := time.Now()
		got, err := waitSMS(sctx, tw, n, timed, limit)
		if err != nil {
			return fmt.Errorf("outage %d: %w", len(samples)+1, err)
		}
		// The SMS may come before the bench has read the events that led
		// to it; they are timed by when they were stored, not read.
		_ = waitUntil(sctx, 5*time.Second, "", func() bool { return w.seenTold(start) })
		s := sample{n: len(samples) + 1, total: got.Received.Sub(start), stages: w.stages(start, got.Received)}
		samples = append(samples, s)
		fmt.Fprintln(out, s.row())
		if err := tg.Recover(); err != nil {
			return err
		}
		if first != nil {
			if err := first.Recover(); err != nil {
				return err
			}
		}
		if _, err := waitSMS(sctx, tw, n+1, "RESOLVED ", limit); err != nil {
			return fmt.Errorf("outage %d: %w", len(samples), err)
		}
		if err := waitUntil(sctx, limit, "the target up again", func() bool { return w.state() == events.StateUp }); err != nil {
			return fmt.Errorf("outage %d: %w", len(samples), err)
		}
	}
	report(out, o.mode, samples)
	if n := w.opened(); n != len(samples) || w.bad > 0 {
		return fmt.Errorf("%d incidents opened for %d outages, and %d events that did not decode", n, len(samples), w.bad)
	}
	return nil
}

// services builds the services `tocsin run` would: a prober for each
// location, checking from its own loopback address, the verifier and the
// notifier, all on one connection to the embedded server.
func services(cfg *config.Config, b *bus.Bus, log *slog.Logger) (map[string]func(context.Context) error, error) {
	runners := map[string]func(context.Context) error{}
	for i, loc := range fleetLocations {
		p, err := prober.New(cfg, prober.Options{Location: loc, Concurrency: 64, Source: net.ParseIP(fleetSources[i])}, prober.Deps{Bus: b, Log: log})
		if err != nil {
			return nil, err
		}
		runners["prober@"+loc] = p.Run
	}
	runners["verifier"] = verifier.New(cfg, verifier.Deps{Bus: b, Log: log}).Run
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: log})
	if err != nil {
		return nil, err
	}
	runners["notifier"] = n.Run
	return runners, nil
}

// waitSMS waits for the message after the first n and checks it is the one
// expected: one SMS per step of each outage, and nothing else.
func waitSMS(ctx context.Context, tw *twilioapi.Server, n int, prefix string, limit time.Duration) (twilioapi.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	msgs, err := tw.WaitFor(ctx, n+1)
	if err != nil {
		return twilioapi.Message{}, fmt.Errorf("no %sSMS within %s: %w", strings.TrimSpace(prefix), limit, err)
	}
	m := msgs[n]
	if m.To != onCallPh || !strings.HasPrefix(m.Body, prefix) || len(msgs) > n+1 {
		return m, fmt.Errorf("expected one %sSMS to the person on call; got %d message(s), the first %q to %s", strings.TrimSpace(prefix), len(msgs)-n, m.Body, m.To)
	}
	return m, nil
}

func waitUntil(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, limit)
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}
