package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
)

// runFlags are the flags of "tocsin run".
type runFlags struct {
	config, data, nats, natsListen, services, location, logFormat, logLevel, source string
	natsListenCert, natsListenKey                                                   string
	replicas, concurrency                                                           int
	shutdown, ackWait, takeOver                                                     time.Duration
	pageListener                                                                    net.Listener // the demo's, on a port it chose
	pushListener                                                                    net.Listener // the demo's, on a port it chose
	natsAuth                                                                        natsFlags
	adminListen                                                                     string
	cpuProfile, memProfile                                                          string
	adminListener                                                                   net.Listener // the demo's, on a port it chose
	// The user the status page posts staff updates with, on a cluster:
	// its own user only reads.
	notesUser, notesPasswordFile string
	notes                        *bus.Bus // connected as notesUser
}

func parseRunFlags(args []string, stderr io.Writer) (*runFlags, error) {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "tocsin.yaml", "the configuration file")
	fs.StringVar(&f.data, "data", "data", "where the embedded JetStream server keeps its streams")
	fs.StringVar(&f.nats, "nats", "", "URL of a NATS JetStream server or cluster; empty runs one embedded in this process")
	fs.StringVar(&f.natsListen, "nats-listen", "", "where the embedded server listens for tocsin commands and other processes, such as 127.0.0.1:4222, with credentials it writes to DATA/"+bus.ClientFileName+"; empty (the default): no socket, the services talk in-process")
	fs.StringVar(&f.natsListenCert, "nats-listen-cert", "", "PEM certificate for --nats-listen, with --nats-listen-key: TLS, required beyond loopback")
	fs.StringVar(&f.natsListenKey, "nats-listen-key", "", "PEM private key of --nats-listen-cert")
	fs.StringVar(&f.services, "services", strings.Join(services, ","), "services to run, comma separated")
	fs.StringVar(&f.location, "location", "", "the location this prober checks from (default: the config's first); a comma-separated list runs a prober for each")
	fs.IntVar(&f.concurrency, "concurrency", 64, "checks a prober runs at once")
	fs.StringVar(&f.source, "source-address", "", "the local address probers check from, on a host with several (default: the system's choice); with several --location, a list of as many")
	fs.IntVar(&f.replicas, "replicas", 1, "copies of each stream to keep (3 on a cluster)")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "how long to finish in-flight work on shutdown")
	fs.DurationVar(&f.ackWait, "ack-wait", 0, "how long a service may hold an event before another gets it: how long a crashed service delays what it held (0: each service's default, 30s)")
	fs.DurationVar(&f.takeOver, "take-over", 0, "how long a standing-by instance of the verifier, notifier, escalator or failover waits before it takes over from one that died (0: 5s)")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.natsAuth.registerAuth(fs)
	fs.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9464", "where /metrics, /healthz and /readyz are served; empty for none")
	fs.StringVar(&f.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file, for `go tool pprof`; empty (the default): none")
	fs.StringVar(&f.memProfile, "mem-profile", "", "when shutdown begins, write a profile of the memory in use to this file, for `go tool pprof`; empty (the default): none")
	fs.StringVar(&f.notesUser, "notes-nats-user", "", "with --nats: the NATS user the status page's admin API posts staff updates as (the status page's own user only reads); the password is read from --notes-nats-password-file")
	fs.StringVar(&f.notesPasswordFile, "notes-nats-password-file", "", "file holding the password of --notes-nats-user")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.ackWait < 0 {
		err := fmt.Errorf("--ack-wait %v must not be negative", f.ackWait)
		fmt.Fprintf(stderr, "tocsin run: %v\n", err)
		return nil, err
	}
	if f.nats != "" && (f.natsListen != "" || f.natsListenCert != "") {
		err := errors.New("--nats-listen is for the embedded server: not with --nats")
		fmt.Fprintf(stderr, "tocsin run: %v\n", err)
		return nil, err
	}
	if (f.natsListenCert == "") != (f.natsListenKey == "") {
		err := errors.New("--nats-listen-cert and --nats-listen-key go together")
		fmt.Fprintf(stderr, "tocsin run: %v\n", err)
		return nil, err
	}
	if f.takeOver < 0 {
		err := fmt.Errorf("--take-over %v must not be negative", f.takeOver)
		fmt.Fprintf(stderr, "tocsin run: %v\n", err)
		return nil, err
	}
	if f.takeOver > 0 && f.takeOver < 2*time.Second {
		// JetStream's pulls last a second at least: shorter, and an idle
		// instance loses its place between two of them.
		err := fmt.Errorf("--take-over %v is too short: at least 2s", f.takeOver)
		fmt.Fprintf(stderr, "tocsin run: %v\n", err)
		return nil, err
	}
	return &f, nil
}

func cmdRun(ctx context.Context, args []string, stderr io.Writer, env func(string) (string, bool)) int {
	f, err := parseRunFlags(args, stderr)
	if err != nil {
		return 2
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin: %v\n", err)
		return 2
	}
	// Each process reads only the secrets of the services it runs; an
	// unknown service is reported by runServices.
	chosen, _ := chooseServices(f.services)
	cfg, code := loadConfigFor(f.config, chosen, stderr, env)
	if cfg == nil {
		return code
	}
	platform.TuneGC(env)
	if f.cpuProfile != "" {
		stop, err := profileCPU(f.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "tocsin run: --cpu-profile: %v\n", err)
			return 2
		}
		defer stop()
	}
	if f.memProfile != "" {
		// Taken as shutdown begins, while every service still holds what
		// it held running.
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		profiled := make(chan struct{})
		go func() {
			defer close(profiled)
			<-ctx.Done()
			profileMemory(f.memProfile, log)
		}()
		defer func() { stop(); <-profiled }() // a failed start profiles too
	}
	if err := runServices(ctx, cfg, f, log, nil); err != nil {
		log.Error("tocsin stopped", "err", err)
		return 1
	}
	return 0
}

// profileMemory writes the heap's profile to file, after a collection, so
// that it shows what was live.
func profileMemory(file string, log *slog.Logger) {
	out, err := os.Create(file)
	if err == nil {
		runtime.GC()
		err = errors.Join(pprof.WriteHeapProfile(out), out.Close())
	}
	if err != nil {
		log.Error("could not write the memory profile", "file", file, "err", err)
	}
}

// profileCPU profiles the process's CPU into file until stop is called.
func profileCPU(file string) (stop func(), err error) {
	out, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

// runServices starts the bus and the chosen services, and stops them all
// when ctx ends or one of them fails. ready, if not nil, is called once the
// bus is up.
func runServices(ctx context.Context, cfg *config.Config, f *runFlags, log *slog.Logger, ready func(*bus.Bus)) error {
	chosen, err := chooseServices(f.services)
	if err != nil {
		return err
	}
	// The whole shutdown keeps to one deadline, from the moment it begins:
	// the services finishing what they hold, the admin server, draining
	// the bus. Until it begins (a failed start), each may take all of it.
	var by time.Time
	left := func() time.Duration {
		if by.IsZero() {
			return f.shutdown
		}
		return max(time.Until(by), 0)
	}
	limits := bus.Limits{MaxStore: int64(cfg.Bus.MaxStore), MaxMemory: int64(cfg.Bus.MaxMemory)}
	var ns *server.Server
	if f.nats == "" {
		if ns, err = startEmbedded(f, limits, log); err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
	}
	// A status page alone, off-site, must start even while the main site
	// is out of reach, and serve its saved state meanwhile: it connects
	// when it can, and needs no streams made.
	pageOnly := slices.Equal(chosen, []string{"statuspage"}) && f.nats != ""
	natsOpts, err := f.natsAuth.options()
	if err != nil {
		return err
	}
	if pageOnly {
		natsOpts = append(natsOpts, nats.RetryOnFailedConnect(true))
	}
	b, err := bus.Connect(f.nats, ns, "tocsin "+strings.Join(chosen, ","), log, natsOpts...)
	if err != nil {
		return err
	}
	defer func() { b.CloseWithin(left()) }()
	b.TakeOver = f.takeOver
	b.Limits = limits
	if !pageOnly {
		setup, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := b.Ensure(setup, f.replicas); err != nil {
			return fmt.Errorf("prepare streams: %w", err)
		}
	}

	var notes *bus.Bus
	if f.notesUser != "" && slices.Contains(chosen, "statuspage") {
		auth := f.natsAuth
		auth.user, auth.passwordFile, auth.creds, auth.nkey = f.notesUser, f.notesPasswordFile, "", ""
		opts, err := auth.options()
		if err != nil {
			return fmt.Errorf("--notes-nats-user: %w", err)
		}
		if pageOnly {
			opts = append(opts, nats.RetryOnFailedConnect(true))
		}
		if notes, err = bus.Connect(f.nats, ns, "tocsin statuspage staff updates", log, opts...); err != nil {
			return fmt.Errorf("connect as --notes-nats-user: %w", err)
		}
		defer func() { notes.CloseWithin(left()) }()
	}
	f.notes = notes

	m := metrics.New()
	runners, err := buildServices(wiring{cfg: cfg, f: f, b: b, m: m, log: log}, chosen)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if !pageOnly {
		defer watchStore(ctx, b, m, log)()
	}
	stopOps, err := startOps(ctx, f, b, m, slices.Sorted(maps.Keys(runners)), cfg.Digest(), log, left)
	if err != nil {
		return err
	}
	defer stopOps()
	var wg sync.WaitGroup
	for name, r := range runners {
		wg.Go(func() {
			if err := r(ctx); err != nil {
				stop(fmt.Errorf("%s: %w", name, err))
			}
		})
	}
	if ready != nil {
		ready(b)
	}
	log.Info("tocsin running", "services", chosen, "version", version)
	<-ctx.Done()
	by = time.Now().Add(f.shutdown)
	log.Info("shutting down", "within", f.shutdown)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(left()):
		log.Error("services did not stop in time; leaving unfinished work to redelivery", "timeout", f.shutdown)
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// startEmbedded starts the JetStream server of one box. By default it has
// no socket: the services reach it in-process, and nobody else at all.
// With --nats-listen it listens, and lets in only the user whose password
// it keeps in the data directory's client file, which the tocsin commands
// on the box read; beyond loopback, only over TLS.
func startEmbedded(f *runFlags, limits bus.Limits, log *slog.Logger) (*server.Server, error) {
	opts := bus.EmbeddedOptions{Dir: filepath.Join(f.data, "jetstream"), Listen: f.natsListen, Limits: limits}
	if f.natsListen == "" {
		if err := bus.RemoveClientFile(f.data); err != nil {
			return nil, fmt.Errorf("remove the nats client file of an earlier run: %w", err)
		}
		ns, err := bus.StartEmbedded(opts)
		if err != nil {
			return nil, err
		}
		log.Info("embedded JetStream server started, in-process only", "data", f.data)
		return ns, nil
	}
	host, _, err := net.SplitHostPort(f.natsListen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: %w", f.natsListen, err)
	}
	if !bus.IsLoopback(host) && f.natsListenCert == "" {
		return nil, fmt.Errorf("--nats-listen %s is not a loopback address: other hosts could reach the bus, which acknowledges incidents and posts to the public; give --nats-listen-cert and --nats-listen-key for TLS, or listen on 127.0.0.1", f.natsListen)
	}
	scheme := "nats"
	if f.natsListenCert != "" {
		if opts.TLS, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.natsListenCert, KeyFile: f.natsListenKey}); err != nil {
			return nil, fmt.Errorf("--nats-listen-cert, --nats-listen-key: %w", err)
		}
		scheme = "tls"
	}
	creds, made, err := bus.ClientCredentials(f.data)
	if err != nil {
		return nil, err
	}
	opts.Client = &creds
	ns, err := bus.StartEmbedded(opts)
	if err != nil {
		return nil, err
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats server: no address to listen on")
	}
	// Commands on this box go where it was told to listen, by loopback
	// when that is everywhere.
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	url := scheme + "://" + net.JoinHostPort(host, strconv.Itoa(addr.Port))
	if err := bus.WriteClientFile(f.data, bus.ClientFile{URL: url, User: creds.User, Password: creds.Password}); err != nil {
		ns.Shutdown()
		return nil, err
	}
	log.Info("embedded JetStream server started", "data", f.data, "listen", addr.String(), "tls", opts.TLS != nil,
		"credentials", filepath.Join(f.data, bus.ClientFileName), "new_credentials", made)
	return ns, nil
}

// watchStore reports how full the bus is in the metrics, and logs an error
// when a stream or bucket passes bus.WarnFill, until ctx ends or the
// returned function is called.
func watchStore(ctx context.Context, b *bus.Bus, m *metrics.Metrics, log *slog.Logger) (stop func()) {
	m.StoreUsage(func(ctx context.Context) ([]metrics.StoreUse, error) {
		usage, err := b.Usage(ctx)
		out := make([]metrics.StoreUse, len(usage))
		for i, u := range usage {
			out[i] = metrics.StoreUse{Stream: u.Stream, Bytes: u.Bytes, MaxBytes: u.MaxBytes}
		}
		return out, err
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchUsage(ctx, time.Minute, func(u bus.StreamUsage) {
			log.Error("a stream of the bus is almost full: a stream of history refuses new events once full; raise bus.max_store or make room",
				"stream", u.Stream, "fill", fmt.Sprintf("%.0f%%", 100*u.Fill()), "bytes", u.Bytes, "max_bytes", u.MaxBytes)
		})
	}()
	return func() { cancel(); <-done }
}

// startOps serves the admin endpoints and announces each service instance
// (named as runners are: "verifier", "prober@lon1") to NATS micro. The
// returned function withdraws the announcements and shuts the admin server
// down; until then it serves, so that the metrics of a shutdown can still
// be scraped, and from the moment ctx ends /readyz says it is shutting
// down.
func startOps(ctx context.Context, f *runFlags, b *bus.Bus, m *metrics.Metrics, instances []string, digest string, log *slog.Logger, left func() time.Duration) (func(), error) {
	ln := f.adminListener
	if ln == nil && f.adminListen != "" {
		var err error
		if ln, err = net.Listen("tcp", f.adminListen); err != nil {
			return nil, fmt.Errorf("--admin-listen %s: %w", f.adminListen, err)
		}
	}
	addr := ""
	run := ctx
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	if ln != nil {
		addr = ln.Addr().String()
		srv := admin.New(m, b.NC, instances, log)
		go func() {
			select {
			case <-run.Done():
				srv.Stopping()
			case <-ctx.Done():
			}
		}()
		go func() {
			defer close(done)
			if err := srv.Serve(ctx, ln, f.shutdown); err != nil {
				log.Error("admin server stopped; metrics and health are not served", "err", err)
			}
		}()
		log.Info("admin server listening", "listen", addr)
	} else {
		close(done)
	}
	var registered []micro.Service
	stop := func() {
		for _, s := range registered {
			if err := s.Stop(); err != nil {
				log.Warn("could not withdraw a service from nats micro", "service", s.Info().Name, "err", err)
			}
		}
		cancel()
		select {
		case <-done:
		case <-time.After(left()):
			log.Warn("admin server not shut down by the shutdown deadline")
		}
	}
	started := time.Now()
	for _, name := range instances {
		service, location, _ := strings.Cut(name, "@")
		s, err := admin.Register(b.NC, admin.Instance{Service: service, Location: location, Version: version, Admin: addr, Started: started, Config: digest}, m)
		if err != nil {
			stop()
			return nil, err
		}
		registered = append(registered, s)
	}
	return stop, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
