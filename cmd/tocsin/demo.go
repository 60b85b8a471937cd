package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/demo"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
)

type demoFlags struct {
	data, logLevel, listen  string
	interval, every, outage time.Duration
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "where the embedded JetStream server keeps its streams (default: a temporary directory)")
	fs.DurationVar(&f.interval, "interval", 5*time.Second, "how often each demo server is checked")
	fs.DurationVar(&f.every, "outage-every", 40*time.Second, "how often a demo server fails")
	fs.DurationVar(&f.outage, "outage-for", 20*time.Second, "how long a failure lasts")
	fs.StringVar(&f.logLevel, "log-level", "error", "debug, info, warn or error")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "where the status page listens")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := runDemo(ctx, f, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "tocsin demo: %v\n", err)
		return 1
	}
	return 0
}

// runDemo runs every service on an embedded bus against the demo's world.
func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, "text", f.logLevel)
	if err != nil {
		return err
	}
	if f.data == "" {
		dir, err := os.MkdirTemp("", "tocsin-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f.data = dir
	}
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	// The status page, on the port asked for.
	pageLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("status page: %w (try --listen 127.0.0.1:0)", err)
	}
	world, err := demo.New(demo.Options{Page: "http://" + pageLn.Addr().String() + "/", Interval: f.interval, Every: f.every, Outage: f.outage, Out: stdout})
	if err != nil {
		pageLn.Close()
		return err
	}
	defer world.Close()
	outboxLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	outboxSrv := httpguard.Server(world.Outbox(), httpguard.DefaultLimits(), nil)
	go outboxSrv.Serve(outboxLn)
	defer outboxSrv.Close()
	// The usual admin port if it is free, any other if not.
	adminLn, err := net.Listen("tcp", "127.0.0.1:9464")
	if err != nil {
		if adminLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
	}
	// The bus listens on loopback, any free port, for the user whose
	// password it writes to the data directory: the other commands find
	// both there with --data.
	world.Intro(demo.Where{Outbox: "http://" + outboxLn.Addr().String() + "/", Admin: adminLn.Addr().String(), Data: data})

	var wg sync.WaitGroup
	defer wg.Wait() // deferred first, so it runs after cancel
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { world.Run(ctx) })
	// Each location checks from an address of its own, so that one can lose
	// its route to a server while the others still reach it.
	cfg := world.Config
	rf := &runFlags{data: f.data, services: strings.Join(services, ","), location: strings.Join(cfg.Locations, ","),
		source: strings.Join(demo.Sources, ","), shutdown: 10 * time.Second, replicas: 1, pageListener: pageLn, pushListener: world.PushListener, adminListener: adminLn,
		natsListen: "127.0.0.1:0"}
	return runServices(ctx, cfg, rf, log, func(b *bus.Bus) {
		wg.Go(func() { world.Watch(ctx, b) })
	})
}
