package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/pipeline"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
	"github.com/tocsin-alarm/tocsin/services/selfwatch"
)

// statusReport is the whole pipeline at a glance; --json prints it as is.
type statusReport struct {
	At        time.Time         `json:"at"`
	Attention []string          `json:"attention"` // what needs someone now; empty when all is well
	Services  []serviceInstance `json:"services"`
	Missing   []string          `json:"missing"` // expected services nobody runs: "prober@nyc1", "escalator"
	Locations []locationStatus  `json:"locations"`
	Consumers []consumerLag     `json:"consumers"`
	Dead      uint64            `json:"dead_letters"`
	Servers   map[string]int    `json:"servers"` // how many in each state
	// Troubled is the servers down, suspect or in maintenance.
	Troubled []serverState         `json:"troubled"`
	Boxes    map[string][]string   `json:"boxes"` // degraded and down boxes
	Open     []fleetstate.Incident `json:"incidents"`
	// Policies is where each open incident stands in its escalation
	// policy, in Open's order.
	Policies []notifier.Position `json:"escalation_policies"`
	// Self is the self alerts open: parts of the alarm itself that stopped.
	Self    []events.SelfRaised   `json:"self_alerts"`
	Actions []events.ServerAction `json:"failover_actions"` // the newest per server, failed first
}

// serviceInstance is one running service as it answers discovery.
type serviceInstance = pipeline.Instance

type locationStatus struct {
	Location string `json:"location"`
	Live     bool   `json:"live"`
	Probers  int    `json:"probers"`
}

type consumerLag = pipeline.ConsumerLag

type serverState struct {
	Server string             `json:"server"`
	State  events.ServerState `json:"state"`
	Since  time.Time          `json:"since"`
}

// cmdStatus shows the whole pipeline at a glance, and exits 1 when
// something needs attention, so that scripts and monitoring can use it.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	var nf natsFlags
	nf.register(fs)
	cfgPath := fs.String("config", "", "the configuration file: expects a prober per location, and failover where configured")
	asJSON := fs.Bool("json", false, "print the report as JSON, for scripts")
	maxLag := fs.Uint64("max-lag", 1000, "messages a consumer may have pending before it needs attention")
	wait := fs.Duration("wait", time.Second, "how long services have to answer discovery")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: tocsin status [--nats URL] [--config FILE] [--json] [--max-lag N]")
		return 2
	}
	var cfg *config.Config
	if *cfgPath != "" {
		var code int
		if cfg, code = loadConfigFor(*cfgPath, nil, stderr, env); cfg == nil {
			return code
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin status: %v\n", err)
		return 2
	}
	b, err := dial(*natsURL, "tocsin status", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin status: %v\n", err)
		return 1
	}
	defer b.Close()
	r, err := gatherStatus(ctx, b, cfg, now(), *maxLag, *wait)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			fmt.Fprintf(stderr, "tocsin status: %v\n", err)
			return 1
		}
	} else {
		writeStatus(stdout, r)
	}
	if len(r.Attention) > 0 {
		return 1
	}
	return 0
}

// expectedServices is what runs where all is well: the table's services
// the config calls for, and a prober per configured location (or at least
// one when the config is not known).
func expectedServices(cfg *config.Config) map[string][]string {
	want := map[string][]string{}
	for _, s := range table {
		if s.expected != nil && s.expected(cfg) {
			want[s.name] = nil
		}
	}
	if cfg != nil {
		want["prober"] = cfg.Locations
	}
	return want
}

func gatherStatus(ctx context.Context, b *bus.Bus, cfg *config.Config, now time.Time, maxLag uint64, wait time.Duration) (*statusReport, error) {
	r := &statusReport{At: now.UTC(), Servers: map[string]int{}, Boxes: map[string][]string{}, Attention: []string{}, Missing: []string{}}
	var err error
	if r.Services, err = pipeline.Discover(ctx, b.NC, wait); err != nil {
		return nil, err
	}
	heard, err := pipeline.Locations(ctx, b, now)
	if err != nil {
		return nil, err
	}
	locs := map[string]int{}
	for l, h := range heard {
		locs[l] = h.Live
	}
	want := expectedServices(cfg)
	if cfg != nil {
		for _, l := range cfg.Locations {
			if _, ok := locs[l]; !ok {
				locs[l] = 0
			}
		}
	}
	if m := pipeline.Missing(r.Services, want); m != nil {
		r.Missing = m
	}
	for _, m := range r.Missing {
		r.Attention = append(r.Attention, "service "+m+" is not running")
	}
	for _, i := range r.Services {
		if i.Ready != nil && !*i.Ready {
			r.Attention = append(r.Attention, fmt.Sprintf("service %s is not ready: %s", i.Label(), i.Detail))
		}
	}
	for _, s := range pipeline.NoneActive(r.Services) {
		r.Attention = append(r.Attention, fmt.Sprintf("no %s is active; a standby takes over within --take-over", s))
	}
	for _, l := range slices.Sorted(maps.Keys(locs)) {
		r.Locations = append(r.Locations, locationStatus{Location: l, Live: locs[l] > 0, Probers: locs[l]})
		if locs[l] == 0 {
			r.Attention = append(r.Attention, "location "+l+" is silent: no prober's heartbeat")
		}
	}
	if r.Consumers, r.Dead, err = pipeline.ConsumerLags(ctx, b.JS); err != nil {
		return nil, err
	}
	for _, c := range r.Consumers {
		if c.Pending > maxLag {
			r.Attention = append(r.Attention, fmt.Sprintf("consumer %s is %d messages behind", c.Consumer, c.Pending))
		}
	}
	if err := fleetstate.Servers(ctx, b, func(key string, rec events.ServerRecord) {
		r.Servers[string(rec.State)]++
		switch rec.State {
		case events.StateDown, events.StateSuspect, events.StateMaintenance:
			r.Troubled = append(r.Troubled, serverState{Server: key, State: rec.State, Since: rec.Since})
		}
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(r.Troubled, func(a, b serverState) int { return strings.Compare(a.Server, b.Server) })
	if err := fleetstate.Boxes(ctx, b, func(key string, box events.BoxRecord) {
		if box.State == events.BoxDown || box.State == events.BoxDegraded {
			r.Boxes[string(box.State)] = append(r.Boxes[string(box.State)], key)
		}
	}); err != nil {
		return nil, err
	}
	for _, box := range r.Boxes[string(events.BoxDown)] {
		r.Attention = append(r.Attention, "box "+box+" is down")
	}
	if r.Open, err = fleetstate.OpenIncidents(ctx, b); err != nil {
		return nil, err
	}
	ids := make([]string, len(r.Open))
	for i, inc := range r.Open {
		ids[i] = inc.ID
		if inc.AckedBy == "" {
			r.Attention = append(r.Attention, "incident "+inc.ID+" is not acknowledged")
		}
	}
	if r.Policies, err = notifier.Positions(ctx, b, cfg, ids, now); err != nil {
		return nil, err
	}
	if r.Self, err = selfwatch.Open(ctx, b); err != nil {
		return nil, err
	}
	for _, a := range r.Self {
		r.Attention = append(r.Attention, "self alert: "+a.Title)
	}
	if r.Actions, err = latestActions(ctx, b); err != nil {
		return nil, err
	}
	for _, a := range r.Actions {
		if a.Outcome == events.OutcomeFailed || a.Alert {
			r.Attention = append(r.Attention, fmt.Sprintf("failover could not %s %s: %s", a.Action, a.Server, a.Error))
		}
	}
	return r, nil
}

// maxActions is how many failover actions the report shows.
const maxActions = 10

// latestActions is the newest action of failover on each server, failed
// ones first, then the newest first.
func latestActions(ctx context.Context, b *bus.Bus) ([]events.ServerAction, error) {
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectServerActions},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil // nothing has run on this bus yet
	} else if err != nil {
		return nil, fmt.Errorf("read failover's actions: %w", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read failover's actions: %w", err)
	}
	var out []events.ServerAction
	for left := info.NumPending; left > 0; {
		batch, err := c.Fetch(int(min(left, 500)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read failover's actions: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if ev, err := events.Decode(m.Subject(), m.Data()); err == nil {
				if a, ok := ev.Data.(*events.ServerAction); ok {
					out = append(out, *a)
				}
			}
		}
		if n == 0 {
			break
		}
		left -= uint64(n)
	}
	slices.SortFunc(out, func(a, b events.ServerAction) int {
		if fa, fb := a.Outcome == events.OutcomeFailed, b.Outcome == events.OutcomeFailed; fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return b.At.Compare(a.At)
	})
	return out[:min(len(out), maxActions)], nil
}
