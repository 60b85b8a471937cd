package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/maintenance"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const maintenanceUsage = `Usage:
  tocsin maintenance start --servers mx1,mx2 | --box mx  --for 2h | --until TIME  [--from TIME] [--reason TEXT]
  tocsin maintenance end ID
  tocsin maintenance list

Every subcommand takes --nats URL (default nats://127.0.0.1:4222, the
embedded server of "tocsin run") and the NATS credential and TLS flags
(--nats-user with --nats-password-file, --nats-creds or --nats-nkey;
--nats-ca, --nats-cert, --nats-key); start also takes --config FILE to know
the fleet. TIME is RFC 3339, like 2026-11-21T02:00:00Z, or "now".
`

// cmdMaintenance starts, ends and lists maintenance windows on a running Tocsin.
func cmdMaintenance(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, maintenanceUsage)
		return 2
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("maintenance "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	by := fs.String("by", whoami(env), "who is doing it, for the record")
	var nf natsFlags
	nf.register(fs)
	var (
		cfgPath, servers, box, from, until, reason string
		dur                                        time.Duration
	)
	if sub == "start" {
		fs.StringVar(&cfgPath, "config", "tocsin.yaml", "the configuration file")
		fs.StringVar(&servers, "servers", "", "servers to work on, comma separated")
		fs.StringVar(&box, "box", "", "or every server of this box")
		fs.StringVar(&from, "from", "now", "when the window opens")
		fs.DurationVar(&dur, "for", 0, "how long it lasts")
		fs.StringVar(&until, "until", "", "or when it closes")
		fs.StringVar(&reason, "reason", "", "what is being done, as customers may read it")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "tocsin maintenance %s: %v\n", sub, err)
		return 1
	}

	var w events.MaintenanceSet
	switch sub {
	case "start":
		cfg, code := loadConfigFor(cfgPath, nil, stderr, env)
		if cfg == nil {
			return code
		}
		var err error
		if w, err = newWindow(cfg, servers, box, from, until, dur, reason, *by, now()); err != nil {
			fmt.Fprintf(stderr, "tocsin maintenance start: %v\n", err)
			return 2
		}
	case "end":
		if fs.NArg() != 1 {
			fmt.Fprintln(stderr, "tocsin maintenance end: give the id of the window, as list shows it")
			return 2
		}
	case "list":
	default:
		fmt.Fprintf(stderr, "tocsin maintenance: unknown subcommand %q\n\n%s", sub, maintenanceUsage)
		return 2
	}

	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin maintenance %s: %v\n", sub, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := dial(*natsURL, "tocsin maintenance", natsOpts...)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	store, err := maintenance.Open(ctx, b)
	if err != nil {
		return fail(err)
	}
	switch sub {
	case "start":
		if err := store.Start(ctx, w); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "maintenance %s: %s from %s until %s\n", w.Maintenance, strings.Join(w.Servers, ", "), w.From.Format(time.RFC3339), w.Until.Format(time.RFC3339))
		if w.Public {
			fmt.Fprintf(stdout, "public: it takes down every server of %s, so customers are told\n", strings.Join(w.Boxes, ", "))
		} else {
			fmt.Fprintln(stdout, "internal: every box stays available, so customers are not told")
		}
	case "end":
		w, err := store.End(ctx, fs.Arg(0), *by, now())
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "maintenance %s ended (%s)\n", w.Maintenance, strings.Join(w.Servers, ", "))
	case "list":
		list, err := store.List(ctx)
		if err != nil {
			return fail(err)
		}
		printWindows(stdout, list, now())
	}
	return 0
}

// newWindow builds the window the flags of "start" describe.
func newWindow(cfg *config.Config, servers, box, from, until string, dur time.Duration, reason, by string, now time.Time) (events.MaintenanceSet, error) {
	var list []string
	for s := range strings.SplitSeq(servers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			list = append(list, s)
		}
	}
	if box != "" {
		b := cfg.Box(box)
		if b == nil {
			return events.MaintenanceSet{}, fmt.Errorf("no box %q in %s", box, cfg.File)
		}
		for _, s := range b.Servers {
			if s.Serving() && !slices.Contains(list, s.ID) {
				list = append(list, s.ID)
			}
		}
	}
	if len(list) == 0 {
		return events.MaintenanceSet{}, fmt.Errorf("say which servers: --servers mx1,mx2 or --box mx")
	}
	start, err := parseTime(from, now)
	if err != nil {
		return events.MaintenanceSet{}, fmt.Errorf("--from: %w", err)
	}
	var end time.Time
	switch {
	case dur > 0 && until != "":
		return events.MaintenanceSet{}, fmt.Errorf("give --for or --until, not both")
	case dur > 0:
		end = start.Add(dur)
	case until != "":
		if end, err = parseTime(until, now); err != nil {
			return events.MaintenanceSet{}, fmt.Errorf("--until: %w", err)
		}
	default:
		return events.MaintenanceSet{}, fmt.Errorf("say how long: --for 2h or --until 2026-11-21T04:00:00Z")
	}
	if !end.After(start) {
		return events.MaintenanceSet{}, fmt.Errorf("the window must close after it opens (%s)", start.Format(time.RFC3339))
	}
	random := make([]byte, 4)
	_, _ = rand.Read(random)
	return maintenance.Window(cfg, maintenance.NewID(start, random), list, start, end, reason, by)
}

func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now.UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is not a time like 2026-11-21T02:00:00Z", s)
	}
	return t, nil
}

func printWindows(w io.Writer, list []events.MaintenanceSet, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no maintenance windows")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tFROM\tUNTIL\tSERVERS\tPUBLIC\tBY\tREASON")
	for _, m := range list {
		state := "scheduled"
		switch {
		case !now.Before(m.Until):
			state = "over"
		case !now.Before(m.From):
			state = "under way"
		}
		public := "no"
		if m.Public {
			public = "yes: " + strings.Join(m.Boxes, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Maintenance, state, m.From.Format(time.RFC3339), m.Until.Format(time.RFC3339), strings.Join(m.Servers, ","), public, m.By, m.Reason)
	}
	tw.Flush()
}

// whoami is the operator's login name, for the record of who did what.
func whoami(env func(string) (string, bool)) string {
	for _, k := range []string{"TOCSIN_USER", "USER", "LOGNAME"} {
		if v, ok := env(k); ok && v != "" {
			return v
		}
	}
	if h, err := os.Hostname(); err == nil {
		return "operator@" + h
	}
	return "operator"
}
