// Command prober measures what one prober costs at the rate of a real fleet.
// It runs the prober service, with its embedded JetStream server, against N
// HTTP servers on loopback, each due once per interval, and reports over a
// fixed window the checks per second achieved against those due, the
// CPU-seconds per 1,000 checks, the resident memory per 1,000 servers and
// how late checks start. The HTTP servers run in a child process, so that
// the figures are those of the prober and the JetStream server alone.
//
//	go run ./bench/prober -servers 100000 -window 3m -warmup 1m
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
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober"
)

// location is the one location of the benchmark's config.
const location = "bench"

type options struct {
	servers     int
	interval    time.Duration
	timeout     time.Duration
	window      time.Duration
	warmup      time.Duration
	concurrency int
	listeners   int
	perBox      int
	natsProcess bool
	cpuProfile  string
	memProfile  string
}

func main() {
	var o options
	flag.IntVar(&o.servers, "servers", 10000, "HTTP servers to check")
	flag.DurationVar(&o.interval, "interval", 5*time.Minute, "each server's check interval")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "each check's timeout")
	flag.DurationVar(&o.window, "window", 2*time.Minute, "how long to measure")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "how long to run before measuring: at start the scheduler publishes every slot due in the last minute at once")
	flag.IntVar(&o.concurrency, "concurrency", 64, "checks the prober runs at once")
	flag.IntVar(&o.listeners, "listeners", 4, "loopback listeners the servers are spread over")
	flag.IntVar(&o.perBox, "per-box", 2, "servers per box in the generated config")
	flag.BoolVar(&o.natsProcess, "nats-process", false, "run the JetStream server in a process of its own and report the prober's and the server's shares apart")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the window to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile at the end of the window to this file")
	bare := flag.Bool("baseline", false, "run bare HTTP checks at the same rate without Tocsin, for the floor of this machine")
	serveWeb := flag.Bool("serve", false, "internal: serve HTTP on loopback for the parent process")
	serveNATS := flag.String("serve-nats", "", "internal: run a JetStream server storing to this directory for the parent process")
	flag.Parse()

	var err error
	switch {
	case *serveWeb:
		err = benchkit.ServeHTTP(o.listeners, "bench/prober")
	case *serveNATS != "":
		err = serveJetStream(*serveNATS)
	default:
		err = benchkit.Interruptible(func(ctx context.Context) error {
			if *bare {
				return baseline(ctx, o, os.Stdout)
			}
			platform.TuneGC(os.LookupEnv) // as tocsin run does
			return run(ctx, o, os.Stdout)
		})
	}
	benchkit.Exit("bench/prober", err)
}

func (o *options) check() error {
	var errs []error
	if o.servers < 1 || o.servers > 999999 {
		errs = append(errs, errors.New("-servers must be between 1 and 999999"))
	}
	if o.interval < time.Second {
		errs = append(errs, errors.New("-interval must be at least 1s"))
	}
	if o.window <= 0 || o.warmup < 0 {
		errs = append(errs, errors.New("-window must be positive and -warmup not negative"))
	}
	if o.listeners < 1 || o.perBox < 1 || o.concurrency < 1 {
		errs = append(errs, errors.New("-listeners, -per-box and -concurrency must be at least 1"))
	}
	o.timeout = min(o.timeout, o.interval)
	return errors.Join(errs...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	tmp, err := os.MkdirTemp("", "tocsin-bench-prober-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	web, addrs, err := benchkit.StartHTTP(o.listeners)
	if err != nil {
		return err
	}
	defer web.Stop()

	// The JetStream server: in this process, as `tocsin run` has it, or in
	// a child of its own to tell its share from the prober's.
	var ns *server.Server
	var natsChild *benchkit.Child
	natsURL := ""
	if o.natsProcess {
		natsChild, natsURL, err = benchkit.StartChild("-serve-nats", tmp)
		if err != nil {
			return fmt.Errorf("start the JetStream server: %w", err)
		}
		defer natsChild.Stop()
	} else {
		var stopNATS func()
		ns, stopNATS, err = benchkit.JetStream("prober-nats")
		if err != nil {
			return err
		}
		defer stopNATS()
	}
	pb, err := bus.Connect(natsURL, ns, "bench prober", log)
	if err != nil {
		return err
	}
	defer pb.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = pb.Ensure(sctx, 1)
	cancel()
	if err != nil {
		return err
	}

	parseStart := time.Now()
	cfg, err := config.Parse("bench.yaml", fleetYAML(o, addrs), func(string) (string, bool) { return "", false })
	if err != nil {
		return fmt.Errorf("the generated config: %w", err)
	}
	rss, hwm := benchkit.MemOf("self")
	fmt.Fprintf(out, "config of %d servers parsed in %s; RSS %s, peak %s\n", o.servers, time.Since(parseStart).Round(time.Millisecond), mb(rss), mb(hwm))

	// Results are counted on a connection of their own, as the verifier
	// would take them; its decoding is timed so that it can be told apart.
	t := newTally(o.servers, o.interval)
	cb, err := bus.Connect(natsURL, ns, "bench results", log)
	if err != nil {
		return err
	}
	defer cb.Close()
	rc, err := cb.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectProbeResults},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("results consumer: %w", err)
	}
	cc, err := rc.Consume(func(m jetstream.Msg) {
		start := time.Now()
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		took := time.Since(start)
		if err != nil {
			t.undecodable(took)
			return
		}
		for _, ev := range evs {
			r, ok := ev.Data.(*events.ProbeResult)
			if !ok {
				t.undecodable(took)
				continue
			}
			t.add(r, took/time.Duration(len(evs)))
		}
	})
	if err != nil {
		return fmt.Errorf("results consumer: %w", err)
	}
	defer cc.Stop()

	p, err := prober.New(cfg, prober.Options{Location: location, Concurrency: o.concurrency}, prober.Deps{Bus: pb, Log: log})
	if err != nil {
		return err
	}
	pctx, cancelProber := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	// However run ends, the prober stops before the connections and the
	// server it uses go away.
	stopProber := sync.OnceValue(func() error {
		cancelProber()
		select {
		case err := <-done:
			return err
		case <-time.After(o.timeout + 30*time.Second):
			return errors.New("it did not stop within its check timeout and 30s")
		}
	})
	defer stopProber()

	fmt.Fprintf(out, "warming up for %s\n", o.warmup)
	if !benchkit.Sleep(ctx, o.warmup) {
		return ctx.Err()
	}
	m, err := measure(ctx, o, t, pb, natsChild, web, out)
	if err != nil {
		return err
	}

	if err := stopProber(); err != nil {
		return fmt.Errorf("prober: %w", err)
	}
	m.print(out, o)
	return nil
}

// measure runs the window and collects the figures. It waits afterwards
// for the checks due in the window that had not finished by its end.
func measure(ctx context.Context, o options, t *tally, pb *bus.Bus, natsChild, web *benchkit.Child, out io.Writer) (*measurement, error) {
	m := &measurement{servers: o.servers, interval: o.interval, window: o.window, cpus: runtime.NumCPU()}
	m.backlogStart = backlog(ctx, pb)
	_, m.hwmStart = benchkit.MemOf("self")
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	from := time.Now()
	to := from.Add(o.window)
	t.open(from, to)
	user0, sys0 := benchkit.CPUSelf()
	rt0 := readRuntime()
	var nats0, web0 time.Duration
	if natsChild != nil {
		nats0 = benchkit.CPUOf(natsChild.Pid())
	}
	web0 = benchkit.CPUOf(web.Pid())
	fmt.Fprintf(out, "measuring for %s from %s\n", o.window, from.Format(time.TimeOnly))

	tick := time.NewTicker(5 * time.Second)
	for now := time.Now(); now.Before(to); now = time.Now() {
		select {
		case <-ctx.Done():
			tick.Stop()
			pprof.StopCPUProfile()
			return nil, ctx.Err()
		case <-tick.C:
		case <-time.After(to.Sub(now)):
		}
		rss, _ := benchkit.MemOf("self")
		m.rssMax = max(m.rssMax, rss)
		if natsChild != nil {
			rss, _ := benchkit.MemOf(natsChild.Pid())
			m.natsRSSMax = max(m.natsRSSMax, rss)
		}
	}
	tick.Stop()
	m.elapsed = time.Since(from)
	user1, sys1 := benchkit.CPUSelf()
	m.sys = sys1 - sys0
	m.cpu = user1 - user0 + m.sys
	rt1 := readRuntime()
	m.gcCPU, m.heapLive = rt1.gcCPU-rt0.gcCPU, rt1.heapLive
	if natsChild != nil {
		m.natsCPU = benchkit.CPUOf(natsChild.Pid()) - nats0
		m.natsRSS, m.natsHWM = benchkit.MemOf(natsChild.Pid())
	}
	m.webCPU = benchkit.CPUOf(web.Pid()) - web0
	m.rss, m.hwm = benchkit.MemOf("self")
	m.rssMax = max(m.rssMax, m.rss)
	m.timeWait = benchkit.TimeWait()
	pprof.StopCPUProfile()
	m.backlogEnd = backlog(ctx, pb)
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return nil, err
		}
	}

	// Checks due shortly before the end may still be running: give them
	// their timeout to report.
	m.due = t.dueIn(from, to)
	deadline := time.Now().Add(o.timeout + 5*time.Second)
	for t.doneCount() < m.due && time.Now().Before(deadline) && benchkit.Sleep(ctx, 250*time.Millisecond) {
	}
	m.tallied = t.close()
	return m, nil
}

// backlog is the work published for the prober and not yet acknowledged
// by it: the windows of scheduled checks (each one message, however many
// checks it holds) and the tasks (re-checks, the canary).
func backlog(ctx context.Context, b *bus.Bus) uint64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n uint64
	for stream, consumer := range map[string]string{
		events.StreamSchedule: "prober-" + location + "-schedule",
		events.StreamTasks:    "prober-" + location,
	} {
		c, err := b.JS.Consumer(ctx, stream, consumer)
		if err != nil {
			continue
		}
		if info, err := c.Info(ctx); err == nil {
			n += info.NumPending + uint64(info.NumAckPending)
		}
	}
	return n
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fleetYAML is a config of o.servers HTTP servers in boxes of o.perBox,
// spread over the listeners at addrs, one path per server.
func fleetYAML(o options, addrs []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "site: {name: Bench}\nlocations: [%s]\nchecks: {interval: %s, timeout: %s}\n", location, o.interval, o.timeout)
	b.WriteString("staff: [{name: Bench, email: bench@example.net}]\n")
	b.WriteString("providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}\n")
	b.WriteString(benchkit.Boxes(o.servers, o.perBox, addrs))
	return []byte(b.String())
}
