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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
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
	Policies []notifier.Position   `json:"escalation_policies"`
	Actions  []events.ServerAction `json:"failover_actions"` // the newest per server, failed first
}

// serviceInstance is one running service as it answers discovery.
type serviceInstance struct {
	Service  string    `json:"service"`
	Location string    `json:"location,omitempty"`
	ID       string    `json:"id"`
	Admin    string    `json:"admin,omitempty"`
	Ready    *bool     `json:"ready,omitempty"` // nil when its status endpoint did not answer
	Started  time.Time `json:"started,omitzero"`
	Detail   string    `json:"detail,omitempty"`
	Role     string    `json:"role,omitempty"` // "active" or "standby" where one instance works at a time
}

// serviceStatus is what a service's status endpoint answers.
type serviceStatus struct {
	ID       string    `json:"id"` // empty from a version that did not say
	Service  string    `json:"service"`
	Location string    `json:"location"`
	Ready    bool      `json:"ready"`
	Started  time.Time `json:"started"`
	Detail   string    `json:"detail"`
	Role     string    `json:"role"`
}

type locationStatus struct {
	Location string `json:"location"`
	Live     bool   `json:"live"`
	Probers  int    `json:"probers"`
}

type consumerLag struct {
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
}

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
		if cfg, code = loadConfig(*cfgPath, stderr, env); cfg == nil {
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

func gatherStatus(ctx context.Context, b *bus.Bus, cfg *config.Config, now time.Time, maxLag uint64, wait time.Duration) (*statusReport, error) {
	r := &statusReport{At: now.UTC(), Servers: map[string]int{}, Boxes: map[string][]string{}, Attention: []string{}, Missing: []string{}}
	var err error
	if r.Services, err = discover(ctx, b.NC, wait); err != nil {
		return nil, err
	}
	locs, err := liveLocations(ctx, b, now)
	if err != nil {
		return nil, err
	}
	// What is expected: the table's services the config calls for, and
	// a prober per configured location (or at least one).
	want := map[string][]string{}
	for _, s := range table {
		if s.expected != nil && s.expected(cfg) {
			want[s.name] = nil
		}
	}
	if cfg != nil {
		want["prober"] = cfg.Locations
		for _, l := range cfg.Locations {
			if _, ok := locs[l]; !ok {
				locs[l] = 0
			}
		}
	}
	for _, s := range slices.Sorted(maps.Keys(want)) {
		if len(want[s]) == 0 {
			if !slices.ContainsFunc(r.Services, func(i serviceInstance) bool { return i.Service == s }) {
				r.Missing = append(r.Missing, s)
			}
			continue
		}
		for _, l := range want[s] {
			if !slices.ContainsFunc(r.Services, func(i serviceInstance) bool { return i.Service == s && i.Location == l }) {
				r.Missing = append(r.Missing, s+"@"+l)
			}
		}
	}
	for _, m := range r.Missing {
		r.Attention = append(r.Attention, "service "+m+" is not running")
	}
	for _, i := range r.Services {
		if i.Ready != nil && !*i.Ready {
			r.Attention = append(r.Attention, fmt.Sprintf("service %s is not ready: %s", i.label(), i.Detail))
		}
	}
	for _, s := range noneActive(r.Services) {
		r.Attention = append(r.Attention, fmt.Sprintf("no %s is active; a standby takes over within --take-over", s))
	}
	for _, l := range slices.Sorted(maps.Keys(locs)) {
		r.Locations = append(r.Locations, locationStatus{Location: l, Live: locs[l] > 0, Probers: locs[l]})
		if locs[l] == 0 {
			r.Attention = append(r.Attention, "location "+l+" is silent: no prober's heartbeat")
		}
	}
	if r.Consumers, r.Dead, err = consumerLags(ctx, b.JS); err != nil {
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

func (i serviceInstance) label() string {
	if i.Location != "" {
		return i.Service + "@" + i.Location
	}
	return i.Service
}

// discover asks every service on the bus who it is, for wait, then asks
// each kind of service its status.
func discover(ctx context.Context, nc *nats.Conn, wait time.Duration) ([]serviceInstance, error) {
	subject, err := micro.ControlSubject(micro.InfoVerb, "", "")
	if err != nil {
		return nil, err
	}
	infos, err := admin.Ask(ctx, nc, []string{subject}, wait, 0)
	if err != nil {
		return nil, fmt.Errorf("discover services: %w", err)
	}
	var out []serviceInstance
	endpoints := map[string]bool{} // the services' status subjects
	for _, m := range infos {
		var info micro.Info
		if json.Unmarshal(m.Data, &info) != nil {
			continue
		}
		name, ok := strings.CutPrefix(info.Name, "tocsin-")
		if !ok {
			continue // another system's service on the same bus
		}
		if s := info.Metadata["service"]; s != "" {
			name = s
		}
		out = append(out, serviceInstance{Service: name, Location: info.Metadata["location"], ID: info.ID, Admin: info.Metadata["admin"]})
		for _, e := range info.Endpoints {
			if e.Subject == admin.StatusSubject(name) {
				endpoints[e.Subject] = true
			}
		}
	}
	if len(endpoints) == 0 {
		return sortInstances(out), nil
	}
	replies, err := admin.Ask(ctx, nc, slices.Sorted(maps.Keys(endpoints)), wait, len(out))
	if err != nil {
		return nil, fmt.Errorf("ask the services' status: %w", err)
	}
	// Every instance answers, saying which it is; an older one that does
	// not say is shown on an instance of its service and location not yet
	// answered for.
	for _, m := range replies {
		var st serviceStatus
		if json.Unmarshal(m.Data, &st) != nil {
			continue
		}
		for i := range out {
			if out[i].Ready == nil && (out[i].ID == st.ID || st.ID == "" && out[i].Service == st.Service && out[i].Location == st.Location) {
				ready := st.Ready
				out[i].Ready, out[i].Started, out[i].Detail, out[i].Role = &ready, st.Started, st.Detail, st.Role
				break
			}
		}
	}
	return sortInstances(out), nil
}

// noneActive lists the services whose instances answering all stand by:
// the one JetStream holds their messages for does not answer (it died,
// and a standby has yet to take over).
func noneActive(instances []serviceInstance) []string {
	standing := map[string]bool{}
	for _, i := range instances {
		switch i.Role {
		case "standby":
			if _, seen := standing[i.label()]; !seen {
				standing[i.label()] = true
			}
		case "active":
			standing[i.label()] = false
		}
	}
	var out []string
	for _, s := range slices.Sorted(maps.Keys(standing)) {
		if standing[s] {
			out = append(out, s)
		}
	}
	return out
}

func sortInstances(out []serviceInstance) []serviceInstance {
	slices.SortFunc(out, func(a, b serviceInstance) int {
		return strings.Compare(a.Service+"@"+a.Location+" "+a.ID, b.Service+"@"+b.Location+" "+b.ID)
	})
	return out
}

// liveLocations counts the probers whose heartbeat is fresh, per location.
func liveLocations(ctx context.Context, b *bus.Bus, now time.Time) (map[string]int, error) {
	kv, err := b.JS.KeyValue(ctx, events.BucketLocations)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return map[string]int{}, nil
	} else if err != nil {
		return nil, fmt.Errorf("open %s: %w", events.BucketLocations, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", events.BucketLocations, err)
	}
	defer func() { _ = w.Stop() }()
	live := map[string]int{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return live, nil
			}
			var hb events.Heartbeat
			if json.Unmarshal(e.Value(), &hb) != nil || hb.Location == "" || hb.TTLMS <= 0 {
				continue
			}
			if _, ok := live[hb.Location]; !ok {
				live[hb.Location] = 0
			}
			if e.Created().Add(time.Duration(hb.TTLMS) * time.Millisecond).After(now) {
				live[hb.Location]++
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("read %s: %w", events.BucketLocations, ctx.Err())
		}
	}
}

// consumerLags is every durable consumer's backlog on Tocsin's streams,
// and the number of messages set aside as dead letters.
func consumerLags(ctx context.Context, js jetstream.JetStream) ([]consumerLag, uint64, error) {
	var out []consumerLag
	var dead uint64
	for _, sc := range events.StreamConfigs(1) {
		s, err := js.Stream(ctx, sc.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		} else if err != nil {
			return nil, 0, fmt.Errorf("read stream %s: %w", sc.Name, err)
		}
		if sc.Name == events.StreamDeadLetters {
			dead = s.CachedInfo().State.Msgs
		}
		list := s.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue // an ordered reader like this command
			}
			out = append(out, consumerLag{Stream: sc.Name, Consumer: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending, Redelivered: ci.NumRedelivered})
		}
		if err := list.Err(); err != nil {
			return nil, 0, fmt.Errorf("list the consumers of %s: %w", sc.Name, err)
		}
	}
	return out, dead, nil
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
