package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/services/domains"
	"github.com/tocsin-alarm/tocsin/services/escalator"
	"github.com/tocsin-alarm/tocsin/services/failover"
	"github.com/tocsin-alarm/tocsin/services/notifier"
	"github.com/tocsin-alarm/tocsin/services/prober"
	"github.com/tocsin-alarm/tocsin/services/push"
	"github.com/tocsin-alarm/tocsin/services/selfwatch"
	"github.com/tocsin-alarm/tocsin/services/statuspage"
	"github.com/tocsin-alarm/tocsin/services/verifier"
	"github.com/tocsin-alarm/tocsin/services/watchdog"
)

func chooseServices(list string) ([]string, error) {
	var chosen []string
	for s := range strings.SplitSeq(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(services, s) {
			return nil, fmt.Errorf("unknown service %q (available: %s)", s, strings.Join(services, ", "))
		}
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		return nil, errors.New("no services to run")
	}
	return chosen, nil
}

// runner runs one service instance until ctx ends.
type runner = func(ctx context.Context) error

// wiring is what every service is built from: the config, the flags, and
// the bus, metrics and log the whole process shares.
type wiring struct {
	cfg *config.Config
	f   *runFlags
	b   *bus.Bus
	m   *metrics.Metrics
	log *slog.Logger
	// expected is what "tocsin status" expects to run with cfg, which
	// the self-watcher alerts on.
	expected map[string][]string
}

// service is one service "tocsin run" can start: its name, how it is
// built, as instances by name ("verifier", "prober@lon1"), and whether
// "tocsin status" expects an instance of it with the config given (nil
// when the config is not known).
type service struct {
	name     string
	build    func(w wiring) (map[string]runner, error)
	expected func(cfg *config.Config) bool
}

// always is expected of every installation.
func always(*config.Config) bool { return true }

// table is every service, in start order: the one list that "run",
// --services, the readiness of each instance and what "tocsin status"
// expects are made from.
var table = []service{
	{"prober", buildProbers, always},
	{"verifier", func(w wiring) (map[string]runner, error) {
		var opts []verifier.Option
		if w.f.ackWait > 0 {
			opts = append(opts, verifier.WithAckWait(w.f.ackWait))
		}
		return one("verifier", verifier.New(w.cfg, verifier.Deps{Bus: w.b, Log: w.log, Metrics: w.m}, opts...).Run, nil)
	}, always},
	{"notifier", func(w wiring) (map[string]runner, error) {
		var opts []notifier.Option
		if w.f.ackWait > 0 {
			opts = append(opts, notifier.WithAckWait(w.f.ackWait))
		}
		n, err := notifier.New(w.cfg, notifier.Deps{Bus: w.b, Log: w.log, Metrics: w.m}, opts...)
		if err != nil {
			return nil, err
		}
		return one("notifier", n.Run, nil)
	}, always},
	{"escalator", func(w wiring) (map[string]runner, error) {
		var opts []escalator.Option
		if w.f.ackWait > 0 {
			opts = append(opts, escalator.WithAckWait(w.f.ackWait))
		}
		e, err := escalator.New(w.cfg, escalator.Deps{Bus: w.b, Log: w.log, Metrics: w.m}, opts...)
		if err != nil {
			return nil, err
		}
		return one("escalator", e.Run, nil)
	}, always},
	{"failover", func(w wiring) (map[string]runner, error) {
		var opts []failover.Option
		if w.f.ackWait > 0 {
			opts = append(opts, failover.WithAckWait(w.f.ackWait))
		}
		return one("failover", failover.New(w.cfg, failover.Deps{Bus: w.b, Log: w.log, Metrics: w.m}, opts...).Run, nil)
	}, failoverConfigured},
	{"statuspage", func(w wiring) (map[string]runner, error) {
		return one("statuspage", statuspage.New(w.cfg, statuspage.Deps{Bus: w.b, Log: w.log, Metrics: w.m},
			statuspage.WithNotes(w.f.notes), statuspage.WithListener(w.f.pageListener),
			statuspage.WithStateFile(filepath.Join(w.f.data, "statuspage.json"))).Run, nil)
	}, always},
	{"domains", func(w wiring) (map[string]runner, error) {
		return one("domains", domains.New(w.cfg, domains.Deps{Bus: w.b, Log: w.log, Metrics: w.m}).Run, nil)
	}, nil},
	{"push", func(w wiring) (map[string]runner, error) {
		var opts []push.Option
		if w.f.pushListener != nil {
			opts = append(opts, push.WithListener(w.f.pushListener))
		}
		return one("push", push.New(w.cfg, push.Deps{Bus: w.b, Log: w.log, Metrics: w.m}, opts...).Run, nil)
	}, pushConfigured},
	{"watchdog", func(w wiring) (map[string]runner, error) {
		if w.cfg.Watchdog == nil {
			return nil, nil // nothing to tell without a switch
		}
		wd, err := watchdog.New(w.cfg, watchdog.Deps{Bus: w.b, Log: w.log, Metrics: w.m})
		if err != nil {
			return nil, err
		}
		return one("watchdog", wd.Run, nil)
	}, watchdogConfigured},
	{"selfwatch", func(w wiring) (map[string]runner, error) {
		return one("selfwatch", selfwatch.New(w.cfg, selfwatch.Deps{Bus: w.b, Log: w.log, Metrics: w.m},
			selfwatch.WithExpected(w.expected)).Run, nil)
	}, always},
}

// pushConfigured: the push service is expected where a server reports in.
func pushConfigured(cfg *config.Config) bool {
	return cfg != nil && slices.ContainsFunc(cfg.Targets(), func(t config.Target) bool { return t.Server.IsPush() })
}

// watchdogConfigured: the watchdog is expected where there is a switch.
func watchdogConfigured(cfg *config.Config) bool { return cfg != nil && cfg.Watchdog != nil }

// failoverConfigured: failover is expected where a box has a failover.
func failoverConfigured(cfg *config.Config) bool {
	return cfg != nil && slices.ContainsFunc(cfg.Boxes, func(b config.Box) bool { return b.Failover != nil })
}

// services is the names of the table, in its order.
var services = func() []string {
	names := make([]string, len(table))
	for i, s := range table {
		names[i] = s.name
	}
	return names
}()

func one(name string, run runner, err error) (map[string]runner, error) {
	return map[string]runner{name: run}, err
}

// buildProbers makes a prober for each location of --location (the
// config's first by default), each checking from its --source-address.
func buildProbers(w wiring) (map[string]runner, error) {
	f := w.f
	list := f.location
	if list == "" {
		list = w.cfg.Locations[0]
	}
	locs := strings.Split(list, ",")
	sources := make([]net.IP, len(locs))
	if f.source != "" {
		addrs := strings.Split(f.source, ",")
		if len(addrs) != 1 && len(addrs) != len(locs) {
			return nil, fmt.Errorf("--source-address has %d addresses for %d locations", len(addrs), len(locs))
		}
		for i := range locs {
			a := strings.TrimSpace(addrs[min(i, len(addrs)-1)])
			if sources[i] = net.ParseIP(a); sources[i] == nil {
				return nil, fmt.Errorf("--source-address %q is not an IP address", a)
			}
		}
	}
	runners := map[string]runner{}
	for i, loc := range locs {
		loc = strings.TrimSpace(loc)
		p, err := prober.New(w.cfg, prober.Options{Location: loc, Concurrency: f.concurrency, Source: sources[i]}, prober.Deps{Bus: w.b, Log: w.log, Metrics: w.m})
		if err != nil {
			return nil, err
		}
		runners["prober@"+loc] = p.Run
	}
	return runners, nil
}

// buildServices builds the chosen services from the table.
func buildServices(w wiring, chosen []string) (map[string]runner, error) {
	runners := map[string]runner{}
	w.expected = expectedServices(w.cfg)
	for _, s := range table {
		if !slices.Contains(chosen, s.name) {
			continue
		}
		rs, err := s.build(w)
		if err != nil {
			return nil, err
		}
		maps.Copy(runners, rs)
	}
	if len(runners) == 0 {
		// Only the watchdog without a watchdog section builds nothing. The
		// process runs idle rather than fail and be restarted for ever, but
		// whoever deployed it expects it to work: say so.
		w.log.Error("nothing to run: the services chosen have no work with this config (the watchdog needs a watchdog section); running idle", "services", chosen)
	}
	return runners, nil
}
