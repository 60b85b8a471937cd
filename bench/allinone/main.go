// Command allinone measures what the whole product costs per check, as
// users run it: the tocsin binary, built from this tree, running every
// service of `tocsin run` (prober, verifier, notifier, escalator, status
// page, push, selfwatch…) with its embedded JetStream server, checking N
// healthy HTTP servers on loopback. Over a window after a warm-up it reads
// the process's CPU and resident memory from /proc and the checks done
// from its Prometheus metrics; then it runs bare checks at the same rate
// for the same window (the floor of this machine, as `bench/prober
// -baseline` does) and prints both CPU costs per 1,000 checks and their
// ratio.
//
//	go run ./bench/allinone
//	go run ./bench/allinone -servers 3000 -interval 30s -window 2m
//
// docs/benchmarks.md explains the figures and keeps the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
)

type options struct {
	servers     int
	interval    time.Duration
	timeout     time.Duration
	window      time.Duration
	warmup      time.Duration
	floorWarmup time.Duration
	concurrency int
	listeners   int
	perBox      int
	tocsin      string
	keep        bool
	cpuProfile  string
	memProfile  string
	rssEvery    time.Duration
	floorWindow time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.servers, "servers", 300, "HTTP servers to check")
	flag.DurationVar(&o.interval, "interval", 3*time.Second, "each server's check interval")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "each check's timeout (at most the interval)")
	flag.DurationVar(&o.window, "window", time.Minute, "how long to measure, tocsin and then the floor")
	flag.DurationVar(&o.warmup, "warmup", 30*time.Second, "how long tocsin runs, once ready, before measuring")
	flag.DurationVar(&o.floorWarmup, "floor-warmup", 10*time.Second, "how long the bare checks run before measuring")
	flag.IntVar(&o.concurrency, "concurrency", 64, "checks at once, in tocsin (its --concurrency) and in the floor")
	flag.IntVar(&o.listeners, "listeners", 4, "loopback listeners the servers are spread over")
	flag.IntVar(&o.perBox, "per-box", 2, "servers per box in the generated config")
	flag.StringVar(&o.tocsin, "tocsin", "", "a tocsin binary to run instead of building ./cmd/tocsin")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, data, tocsin's log) and say where")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "have tocsin write a CPU profile of its whole run to this file (its --cpu-profile)")
	flag.StringVar(&o.memProfile, "memprofile", "", "have tocsin write a profile of its memory in use to this file when it stops (its --mem-profile)")
	flag.DurationVar(&o.floorWindow, "floor-window", 0, "how long to measure the bare checks (0: as long as -window); a shorter one suits a long -window of memory")
	flag.DurationVar(&o.rssEvery, "rss-every", 0, "print tocsin's resident memory this often during the window (0: only at the end), to see whether it stays flat")
	serve := flag.Bool("serve", false, "internal: serve HTTP on loopback for the parent process")
	flag.Parse()

	var err error
	if *serve {
		err = benchkit.ServeHTTP(o.listeners, "bench/allinone")
	} else {
		err = benchkit.Interruptible(func(ctx context.Context) error { return run(ctx, o, os.Stdout) })
	}
	benchkit.Exit("bench/allinone", err)
}

func (o *options) check() error {
	var errs []error
	if o.servers < 1 || o.servers > 100000 {
		errs = append(errs, errors.New("-servers must be between 1 and 100000"))
	}
	if o.interval < time.Second || o.interval > time.Hour {
		errs = append(errs, errors.New("-interval must be between 1s and 1h"))
	}
	if o.timeout < time.Second {
		errs = append(errs, errors.New("-timeout must be at least 1s"))
	}
	if o.window < time.Second || o.window > time.Hour || o.warmup < 0 || o.warmup > time.Hour || o.floorWarmup < 0 || o.floorWarmup > time.Hour {
		errs = append(errs, errors.New("-window must be between 1s and 1h, -warmup and -floor-warmup between 0 and 1h"))
	}
	if o.listeners < 1 || o.listeners > 64 || o.perBox < 1 || o.concurrency < 1 || o.concurrency > 10000 {
		errs = append(errs, errors.New("-listeners (1 to 64), -per-box and -concurrency (1 to 10000) must be at least 1"))
	}
	if o.floorWindow == 0 {
		o.floorWindow = o.window
	}
	if o.floorWindow < time.Second || o.floorWindow > time.Hour {
		errs = append(errs, errors.New("-floor-window must be between 1s and 1h"))
	}
	o.timeout = min(o.timeout, o.interval)
	return errors.Join(errs...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tocsin-bench-allinone-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(out, "kept %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin := o.tocsin
	if bin == "" {
		fmt.Fprintln(out, "building ./cmd/tocsin")
		if bin, err = buildTocsin(ctx, tmp); err != nil {
			return err
		}
	}
	web, addrs, err := benchkit.StartHTTP(o.listeners)
	if err != nil {
		return err
	}
	defer web.Stop()

	free, err := freePorts(5)
	if err != nil {
		return err
	}
	p := ports{admin: free[0], page: free[1], ack: free[2], push: free[3], smtp: free[4]}
	if err := os.WriteFile(filepath.Join(tmp, "tocsin.yaml"), fleetYAML(o, addrs, p), 0o600); err != nil {
		return err
	}
	r := result{opts: o, started: time.Now(), load: loadAvg()}
	t, err := startTocsin(bin, tmp, p, o.cpuProfile, o.memProfile)
	if err != nil {
		return fmt.Errorf("start tocsin: %w", err)
	}
	defer t.stop()
	if err := t.waitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(out, "tocsin ready (pid %s): %d servers every %s, %.1f checks/s due; warming up for %s\n",
		t.pid(), o.servers, o.interval, r.due(), o.warmup)
	if !benchkit.Sleep(ctx, o.warmup) {
		return ctx.Err()
	}
	if err := measureTocsin(ctx, t, web, &r, out); err != nil {
		return err
	}
	t.stop()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	fmt.Fprintf(out, "floor: bare checks at %.1f/s; warming up for %s, measuring for %s\n", r.due(), o.floorWarmup, o.floorWindow)
	web0 := benchkit.CPUOf(web.Pid())
	r.floor = benchkit.Floor(ctx, benchkit.FloorOptions{
		Addrs: addrs, Servers: o.servers, Rate: r.due(), Timeout: o.timeout,
		Concurrency: o.concurrency, Warmup: o.floorWarmup, Window: o.floorWindow,
	})
	r.floorWebCPU = benchkit.CPUOf(web.Pid()) - web0 // warm-up included
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.print(out)
	return nil
}

// measureTocsin samples the tocsin process over the window.
func measureTocsin(ctx context.Context, t *tocsinProc, web *benchkit.Child, r *result, out io.Writer) error {
	names := []string{"tocsin_checks_total", "tocsin_check_failures_total"}
	c0, err := t.counters(names...)
	if err != nil {
		return err
	}
	from := time.Now()
	u0, s0 := benchkit.CPUSplitOf(t.pid())
	web0 := benchkit.CPUOf(web.Pid())
	fmt.Fprintf(out, "measuring tocsin for %s from %s\n", r.opts.window, from.Format(time.TimeOnly))
	to := from.Add(r.opts.window)
	lastSample := from
	for now := time.Now(); now.Before(to); now = time.Now() {
		if !benchkit.Sleep(ctx, min(5*time.Second, to.Sub(now))) {
			return ctx.Err()
		}
		if t.exited() {
			return fmt.Errorf("tocsin exited during the window; the end of its log:\n%s", t.tail(20))
		}
		rss, _ := benchkit.MemOf(t.pid())
		r.rssMax = max(r.rssMax, rss)
		if r.rssMin == 0 || rss < r.rssMin {
			r.rssMin = rss
		}
		if every := r.opts.rssEvery; every > 0 && time.Since(lastSample) >= every {
			lastSample = time.Now()
			fmt.Fprintf(out, "  %s into the window: RSS %s\n", lastSample.Sub(from).Round(time.Second), mb(rss))
		}
	}
	c1, err := t.counters(names...)
	if err != nil {
		return err
	}
	u1, s1 := benchkit.CPUSplitOf(t.pid())
	r.elapsed = time.Since(from)
	r.webCPU = benchkit.CPUOf(web.Pid()) - web0
	r.cpu, r.sys = (u1-u0)+(s1-s0), s1-s0
	r.checks = c1[names[0]] - c0[names[0]]
	r.failed = c1[names[1]] - c0[names[1]]
	r.rss, r.hwm = benchkit.MemOf(t.pid())
	r.rssMax = max(r.rssMax, r.rss)
	return nil
}
