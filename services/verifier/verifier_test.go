package verifier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/maintenance"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1m, recover_after: 2, verify: {locations: 1, quorum: 1}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://127.0.0.1:25"}, {id: mx2, check: "tcp://127.0.0.1:26"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// start runs a verifier until the returned stop is called or the test ends.
func start(t *testing.T, b *bus.Bus, cfg *config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(ctx)
	}()
	var once bool
	stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("verifier: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

var clock = time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)

func publishResult(t *testing.T, b *bus.Bus, server string, n int, ok bool) {
	t.Helper()
	publish(t, b, server, n, ok, "")
}

// answer publishes a result answering the verification under way, once the
// server is suspect.
func answer(t *testing.T, b *bus.Bus, server string, n int, ok bool) {
	t.Helper()
	waitState(t, b, server, events.StateSuspect)
	kv, err := b.KV(context.Background(), events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	_, err = bus.GetJSON(context.Background(), kv, server, &rec)
	if err != nil || rec.Round == nil || len(rec.Round.Locations) == 0 {
		t.Fatalf("no verification under way for %s: %v", server, err)
	}
	// The next location asked answers the task it was sent.
	i := len(rec.Round.Answered) % len(rec.Round.Locations)
	loc := rec.Round.Locations[i]
	publishAs(t, b, server, n, ok, rec.Round.ID, loc, judge.TaskID(rec.Round.ID, loc, i))
}

func publish(t *testing.T, b *bus.Bus, server string, n int, ok bool, correlation string) {
	t.Helper()
	publishAs(t, b, server, n, ok, correlation, "lon1", fmt.Sprintf("t%d", n))
}

func publishAs(t *testing.T, b *bus.Bus, server string, n int, ok bool, correlation, location, task string) {
	t.Helper()
	at := clock.Add(time.Duration(n) * time.Second)
	r := &events.ProbeResult{Server: server, Location: location, Check: "tcp://127.0.0.1:25", Task: task, Purpose: events.PurposeScheduled, Started: at, OK: ok, Correlation: correlation}
	if !ok {
		r.Reason = "connection refused"
	}
	if err := b.Publish(context.Background(), events.New(fmt.Sprintf("%s/%d/result", server, n), "prober@lon1", at, r)); err != nil {
		t.Fatal(err)
	}
}

// incidentEvents returns the subjects of every incident event, after waiting
// for at least n of them.
func incidentEvents(t *testing.T, b *bus.Bus, n int) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	wait.For(t, fmt.Sprintf("%d incident events", n), func() bool {
		got = got[:0]
		c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncidents}})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got = append(got, m.Subject())
		}
		return len(got) >= n
	})
	return got
}

// resolution is the resolution event of the incidents stream, decoded.
func resolution(t *testing.T, b *bus.Bus) *events.IncidentResolved {
	t.Helper()
	for _, ev := range bustest.Events(t, b, events.StreamEvents, events.SubjectIncidents) {
		if r, ok := ev.Data.(*events.IncidentResolved); ok {
			return r
		}
	}
	t.Fatal("no resolution event")
	return nil
}

// deadReasons is the reasons given for the first n dead letters, a line
// each, waiting 5 s at most for each.
func deadReasons(t *testing.T, b *bus.Bus, n int) string {
	t.Helper()
	c, err := b.JS.OrderedConsumer(context.Background(), events.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for range n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("dead letters so far %q: %v", reasons, err)
		}
		reasons = append(reasons, m.Headers().Get(events.HeaderDeadReason))
	}
	return strings.Join(reasons, "\n")
}

// incidentTally is what the incidents stream told of one incident.
type incidentTally struct {
	opened, resolved int
	title            string
	added, ended     []string
}

// tallies are incident tallies by incident id.
type tallies map[string]*incidentTally

// add counts ev, an incident event, and says whether it resolved one.
func (ts tallies) add(ev events.Event) (resolved bool) {
	get := func(id string) *incidentTally {
		if ts[id] == nil {
			ts[id] = &incidentTally{}
		}
		return ts[id]
	}
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		get(d.Incident).opened++
		get(d.Incident).added = append(get(d.Incident).added, d.Servers[0].Server)
	case *events.IncidentUpdated:
		for _, a := range d.Added {
			get(d.Incident).added = append(get(d.Incident).added, a.Server)
		}
	case *events.IncidentResolved:
		inc := get(d.Incident)
		inc.resolved++
		inc.ended, inc.title = d.Servers, d.Title
		return true
	}
	return false
}

// tookOut checks that a resolution tells of mx1 as taken out of service,
// not recovered: what staff, the datacentre and the public read follows.
func tookOut(t *testing.T, r *events.IncidentResolved) {
	t.Helper()
	if !slices.Contains(r.Servers, "mx1") || !slices.Equal(r.Withdrawn, []string{"mx1"}) {
		t.Errorf("resolution lists servers %v, withdrawn %v: want mx1 among both", r.Servers, r.Withdrawn)
	}
}

func TestMalformedResultIsSetAsideAndJudgingGoesOn(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, testConfig(t))
	ctx := context.Background()

	if _, err := b.JS.Publish(ctx, "probe.result.mx1", []byte(`{"v":1,"id":"x","type":"probe.result","data":{}}`)); err != nil {
		t.Fatal(err)
	}
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx1", 2, false)
	answer(t, b, "mx1", 3, false)

	got := incidentEvents(t, b, 1)
	if len(got) != 1 || !matches(got[0], "incident.*.opened") {
		t.Errorf("incident events %v, want one opened", got)
	}

	c, err := b.JS.OrderedConsumer(ctx, events.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got, want := m.Headers().Get(events.HeaderDeadReason), "probe.result event \"x\": missing time"; got != want {
		t.Errorf("dead-letter reason %q, want %q", got, want)
	}
	if m.Subject() != "dead.verifier" {
		t.Errorf("dead letter on %s", m.Subject())
	}
}

func TestRestartCarriesOn(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig(t)
	stop := start(t, b, cfg)
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx1", 2, false)
	waitState(t, b, "mx1", events.StateSuspect)
	stop()

	// The re-check's answer arrives while no verifier runs; the new one
	// confirms it from the stored state, then sees the recovery.
	answer(t, b, "mx1", 3, false)
	start(t, b, cfg)
	waitState(t, b, "mx1", events.StateDown)
	publishResult(t, b, "mx1", 4, true)
	publishResult(t, b, "mx1", 5, true)
	waitState(t, b, "mx1", events.StateUp)

	got := incidentEvents(t, b, 2)
	if len(got) != 2 || !matches(got[0], "incident.*.opened") || !matches(got[1], "incident.*.resolved") {
		t.Errorf("incident events %v, want opened then resolved", got)
	}
}

// waitState waits until a server's record says it is in the state wanted.
func waitState(t *testing.T, b *bus.Bus, server string, want events.ServerState) {
	t.Helper()
	ctx := context.Background()
	kv, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	var got events.ServerRecord
	wait.For(t, fmt.Sprintf("%s %s", server, want), func() bool {
		got = events.ServerRecord{}
		if _, err := bus.GetJSON(ctx, kv, server, &got); err != nil {
			t.Fatal(err)
		}
		return got.State == want
	})
}

func judgeDown() judge.Server {
	return judge.Server{ServerRecord: events.ServerRecord{ID: "mx1", State: events.StateDown, Since: clock}, Seq: 2, Last: clock, Incident: "20261121-aaaaaa", IncidentOpened: clock}
}

func matches(subject, pattern string) bool {
	st, pt := splitDots(subject), splitDots(pattern)
	if len(st) != len(pt) {
		return false
	}
	for i := range pt {
		if pt[i] != "*" && pt[i] != st[i] {
			return false
		}
	}
	return true
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestRechecksGoToOtherLocations: a failure seen from lon1 is checked again
// at once from the other live locations, as many as the quorum needs, each
// task carrying the same correlation id; with too few of them, from lon1
// again, and the incident says so.
func TestRechecksGoToOtherLocations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		live, want   []string
		verification string
	}{
		{[]string{"lon1", "ams1", "nyc1"}, []string{"ams1", "nyc1"}, "confirmed by 2 of 2 re-checks"},
		{[]string{"lon1", "ams1"}, []string{"ams1", "lon1"}, "confirmed by 2 of 2 re-checks; too few live locations, so some re-checks came from where the failure was seen"},
	} {
		t.Run(strings.Join(tc.live, ","), func(t *testing.T) { testRechecks(t, tc.live, tc.want, tc.verification) })
	}
}

func testRechecks(t *testing.T, live, want []string, verification string) {
	b := bustest.New(t)
	cfg := testConfig(t)
	cfg.Checks.Verify = config.Verify{Locations: 2, Quorum: 2}
	cfg.Locations = []string{"lon1", "ams1", "nyc1"}
	ctx := context.Background()
	lkv, err := b.KV(ctx, events.BucketLocations)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range live {
		hb := fmt.Sprintf(`{"location":%q,"instance":"i","since":"2026-01-01T00:00:00Z","ttl_ms":600000}`, loc)
		if _, err := lkv.Put(ctx, loc+".i", []byte(hb)); err != nil {
			t.Fatal(err)
		}
	}
	start(t, b, cfg)
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx1", 2, false)

	c, err := b.JS.CreateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	got, tasks := map[string]string{}, map[string]string{}
	for len(got) < 2 {
		ev := bustest.Next(t, c, 10*time.Second, fmt.Sprintf("re-check tasks so far %v", got))
		task := ev.Data.(*events.ProbeTask)
		if task.Purpose != events.PurposeRecheck || task.Correlation == "" {
			t.Errorf("task %+v is not a correlated re-check", task)
		}
		got[task.Location], tasks[task.Location] = task.Correlation, ev.ID
	}
	if got[want[0]] == "" || got[want[0]] != got[want[1]] {
		t.Errorf("re-checks went to %v, want %v with one correlation id", got, want)
	}
	waitState(t, b, "mx1", events.StateSuspect)

	// Two failing answers confirm it.
	for i, loc := range want {
		at := clock.Add(time.Duration(3+i) * time.Second)
		r := &events.ProbeResult{Server: "mx1", Location: loc, Check: "tcp://127.0.0.1:25", Task: tasks[loc], Purpose: events.PurposeRecheck,
			Correlation: got[loc], Started: at, OK: false, Reason: "connection refused"}
		if err := b.Publish(ctx, events.New("mx1/answer/"+loc, "prober@"+loc, at, r)); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, b, "mx1", events.StateDown)
	ic, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncident("*", "opened")}})
	if err != nil {
		t.Fatal(err)
	}
	ev := bustest.Next(t, ic, 10*time.Second, "no incident opened")
	if a := ev.Data.(*events.IncidentOpened).Servers[0]; a.Verification != verification {
		t.Errorf("incident says %q, want %q", a.Verification, verification)
	}
}

// TestPendingEventsAreFlushed: events a crashed verifier decided but did not
// publish wait in the record and go out with the next result.
func TestPendingEventsAreFlushed(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	opened := events.New("20261121-aaaaaa/opened", "verifier", clock, &events.IncidentOpened{
		Incident: "20261121-aaaaaa", Opened: clock, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://127.0.0.1:25", Since: clock}},
	})
	o, err := bus.Hold(opened, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := record{Server: judgeDown(), Outbox: bus.Outbox{Pending: []bus.Outgoing{o}}}
	if _, err := bus.PutJSON(ctx, kv, "mx1", rec, 0); err != nil {
		t.Fatal(err)
	}
	start(t, b, testConfig(t))
	publishResult(t, b, "mx1", 100, false)
	if got := incidentEvents(t, b, 1); got[0] != "incident.20261121-aaaaaa.opened" {
		t.Errorf("incident events %v, want the pending one", got)
	}
}

// TestBoxOfTwo: one server down leaves its box degraded, both down take it
// down, and it is operational again when they recover.
func TestBoxOfTwo(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, testConfig(t))
	ctx := context.Background()
	boxes, err := b.KV(ctx, events.BucketBoxes)
	if err != nil {
		t.Fatal(err)
	}
	waitBox := func(want events.BoxState) { waitBox(t, boxes, "mx", want) }
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx2", 1, true)
	waitBox(events.BoxOperational)

	publishResult(t, b, "mx1", 2, false)
	answer(t, b, "mx1", 3, false)
	waitBox(events.BoxDegraded)

	publishResult(t, b, "mx2", 4, false)
	answer(t, b, "mx2", 5, false)
	waitBox(events.BoxDown)

	for n := 6; n < 8; n++ {
		publishResult(t, b, "mx1", n, true)
	}
	waitBox(events.BoxDegraded)
	for n := 8; n < 10; n++ {
		publishResult(t, b, "mx2", n, true)
	}
	waitBox(events.BoxOperational)

	// The announcements, in order.
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectBoxChanged("mx")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 5 {
		ev := bustest.Next(t, c, 5*time.Second, fmt.Sprintf("box events so far %v", got))
		bc := ev.Data.(*events.BoxStateChanged)
		got = append(got, fmt.Sprintf("%s(%s)", bc.To, strings.Join(bc.Down, ",")))
	}
	if want := "operational() degraded(mx1) down(mx1,mx2) degraded(mx2) operational()"; strings.Join(got, " ") != want {
		t.Errorf("box events %v, want %s", got, want)
	}

	// One incident for the box: each server that joined it said whether
	// the service was still available, and it resolved with the last.
	ic, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncidents}})
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	ids := map[string]bool{}
	for len(said) < 6 {
		ev := bustest.Next(t, ic, 5*time.Second, fmt.Sprintf("incident events so far %v", said))
		switch d := ev.Data.(type) {
		case *events.IncidentOpened:
			a := d.Servers[0]
			ids[d.Incident] = true
			said = append(said, fmt.Sprintf("opened %s:%s%v", a.Server, a.BoxState, a.StillUp))
		case *events.IncidentUpdated:
			ids[d.Incident] = true
			for _, a := range d.Added {
				said = append(said, fmt.Sprintf("added %s:%s%v", a.Server, a.BoxState, a.StillUp))
			}
			for _, r := range d.Recovered {
				said = append(said, "back "+r)
			}
			for _, bs := range d.Boxes {
				said = append(said, fmt.Sprintf("box %s:%s%v", bs.Box, bs.State, bs.Up))
			}
		case *events.IncidentResolved:
			ids[d.Incident] = true
			said = append(said, fmt.Sprintf("resolved %v", d.Servers))
		}
	}
	want := "opened mx1:degraded[mx2] added mx2:down[] box mx:down[] back mx1 box mx:degraded[mx1] resolved [mx1 mx2]"
	if strings.Join(said, " ") != want || len(ids) != 1 {
		t.Errorf("incident events %v in %d incidents, want %s in one", said, len(ids), want)
	}
}

// TestMaintenanceAndNotInService: a server out of service is recorded as
// such at start and left out of its box; failures inside a maintenance
// window page nobody.
func TestMaintenanceAndNotInService(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1m, recover_after: 2, verify: {locations: 1, quorum: 1}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://127.0.0.1:25"}, {id: mx2, check: "tcp://127.0.0.1:26", in_service: false}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
maintenance:
  - {servers: [mx1], from: 2026-11-21T02:00:10Z, until: 2026-11-21T02:00:20Z, reason: Kernel upgrade}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	start(t, b, cfg)
	waitState(t, b, "mx2", events.StateNotInService)

	publishResult(t, b, "mx1", 1, true)
	waitState(t, b, "mx1", events.StateUp)
	for n := 11; n < 15; n++ { // inside the window
		publishResult(t, b, "mx1", n, false)
	}
	waitState(t, b, "mx1", events.StateMaintenance)
	publishResult(t, b, "mx1", 25, true) // after it
	waitState(t, b, "mx1", events.StateUp)

	// A window started at run time, as "tocsin maintenance start" does.
	ctx := context.Background()
	ms, err := maintenance.Open(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	w, err := maintenance.Window(cfg, "disk-swap", []string{"mx1"}, clock.Add(30*time.Second), clock.Add(40*time.Second), "Disk swap", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Start(ctx, w); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the verifier hears of it at once; a second is ample on a busy machine
	for n := 31; n < 35; n++ {
		publishResult(t, b, "mx1", n, false)
	}
	waitState(t, b, "mx1", events.StateMaintenance)
	publishResult(t, b, "mx1", 45, true)
	waitState(t, b, "mx1", events.StateUp)

	info, err := b.JS.Stream(ctx, events.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.CachedInfo().State; st.Msgs != 0 {
		t.Errorf("%d re-check tasks during maintenance", st.Msgs)
	}
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncidents}})
	if err != nil {
		t.Fatal(err)
	}
	if ci, err := c.Info(ctx); err != nil || ci.NumPending != 0 {
		t.Errorf("incident events during maintenance: %v %v", ci, err)
	}
	// mx1 up, mx2 not in service and left out: the box is operational.
	boxes, _ := b.KV(ctx, events.BucketBoxes)
	waitBox(t, boxes, "mx", events.BoxOperational)
}

// waitBox waits until a box's record says it is in the state wanted.
func waitBox(t *testing.T, boxes jetstream.KeyValue, box string, want events.BoxState) {
	t.Helper()
	var got events.BoxRecord
	wait.For(t, fmt.Sprintf("box %s %s", box, want), func() bool {
		got = events.BoxRecord{}
		_, _ = bus.GetJSON(context.Background(), boxes, box, &got)
		return got.State == want
	})
}

// TestStormJoinsOneIncident: a datacentre losing power takes a hundred
// servers in twenty boxes down at once. They make one incident, which each
// server joins once and which resolves when the last is back; a server
// failing at the same moment in another datacentre has its own.
func TestStormJoinsOneIncident(t *testing.T) {
	t.Parallel()
	var y strings.Builder
	y.WriteString("site: {name: Test}\nlocations: [lon1]\nchecks: {interval: 1m, recover_after: 1, verify: {locations: 1, quorum: 1}}\n")
	y.WriteString("datacentres: {dc1: {name: DC One}, dc2: {name: DC Two}}\nboxes:\n")
	var servers []string
	for b := range 20 {
		fmt.Fprintf(&y, "  - {id: b%d, name: Box %d, datacentre: dc1, servers: [", b, b)
		for s := range 5 {
			id := fmt.Sprintf("b%ds%d", b, s)
			servers = append(servers, id)
			fmt.Fprintf(&y, "{id: %s, check: \"tcp://127.0.0.1:1\"},", id)
		}
		y.WriteString("]}\n")
	}
	y.WriteString("  - {id: far, name: Far, datacentre: dc2, servers: [{id: far1, check: \"tcp://127.0.0.1:1\"}]}\n")
	y.WriteString("staff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}\n")
	cfg, err := config.Parse("test.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	b := srv.Connect(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start(t, b, cfg)

	all := append(slices.Clone(servers), "far1")
	for _, s := range all {
		publishResult(t, b, s, 1, true)
	}
	for _, s := range all {
		publishResult(t, b, s, 2, false)
	}
	for _, s := range all {
		answer(t, b, s, 3, false)
	}
	for _, s := range all {
		waitState(t, b, s, events.StateDown)
	}
	for _, s := range all {
		publishResult(t, b, s, 4, true)
	}
	for _, s := range all {
		waitState(t, b, s, events.StateUp)
	}

	incidents := tallies{}
	c, err := b.JS.OrderedConsumer(context.Background(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncidents}})
	if err != nil {
		t.Fatal(err)
	}
	for resolved := 0; resolved < 2; {
		ev := bustest.Next(t, c, 10*time.Second, fmt.Sprintf("incidents so far %d", len(incidents)))
		if incidents.add(ev) {
			resolved++
		}
	}
	slices.Sort(servers)
	var sawFar, sawStorm bool
	for id, inc := range incidents {
		slices.Sort(inc.added)
		if inc.opened != 1 || inc.resolved != 1 {
			t.Errorf("%s: opened %d times, resolved %d times", id, inc.opened, inc.resolved)
		}
		switch {
		case slices.Equal(inc.added, []string{"far1"}) && slices.Equal(inc.ended, []string{"far1"}):
			sawFar = true
		case slices.Equal(inc.added, servers) && slices.Equal(inc.ended, servers):
			sawStorm = true
			if want := "100 servers down in 20 boxes at DC One"; inc.title != want {
				t.Errorf("title %q, want %q", inc.title, want)
			}
		default:
			t.Errorf("%s: added %v, resolved with %v", id, inc.added, inc.ended)
		}
	}
	if len(incidents) != 2 || !sawFar || !sawStorm {
		t.Errorf("%d incidents; want one for dc1's hundred servers and one for far1", len(incidents))
	}
}

// A record written after the verifier read the bucket at start (another
// verifier during a rolling restart) is read when writing over it fails,
// and judging goes on from it.
func TestRecordWrittenSinceStartIsRead(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig(t)
	ctx := context.Background()
	start(t, b, cfg)
	publishResult(t, b, "mx2", 1, true)
	waitState(t, b, "mx2", events.StateUp) // started and preloaded

	kv, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.PutJSON(ctx, kv, "mx1", record{Server: judgeDown()}, 0); err != nil {
		t.Fatal(err)
	}
	// The first is retried after the failed write, and may come after the
	// others; two of three make recover_after.
	publishResult(t, b, "mx1", 3, true)
	publishResult(t, b, "mx1", 4, true)
	publishResult(t, b, "mx1", 5, true)
	waitState(t, b, "mx1", events.StateUp) // recovered from down, not seen afresh
	var rec record
	if _, err := bus.GetJSON(ctx, kv, "mx1", &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Seq <= judgeDown().Seq {
		t.Errorf("mx1's record has seq %d, want it to go on from %d", rec.Seq, judgeDown().Seq)
	}
}

// mx1DownThenStopped runs a verifier until mx1 of testConfig is down with
// its incident open, and stops it.
func mx1DownThenStopped(t *testing.T) *bus.Bus {
	t.Helper()
	b := bustest.New(t)
	stop := start(t, b, testConfig(t))
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx2", 1, true)
	publishResult(t, b, "mx1", 2, false)
	answer(t, b, "mx1", 3, false)
	waitState(t, b, "mx1", events.StateDown)
	if got := incidentEvents(t, b, 1); len(got) != 1 || !strings.HasSuffix(got[0], ".opened") {
		t.Fatalf("incident events %v, want one opened", got)
	}
	stop()
	return b
}

// TestDownServerTakenOutOfService: a server down with an incident open,
// then marked not in service in the config, leaves its incident, which
// resolves rather than wait for a server nobody checks any more; its box
// is judged on the servers still in service.
func TestDownServerTakenOutOfService(t *testing.T) {
	t.Parallel()
	b := mx1DownThenStopped(t)

	cfg := testConfig(t)
	notServing := false
	cfg.Boxes[0].Servers[0].InService = &notServing
	start(t, b, cfg)
	waitState(t, b, "mx1", events.StateNotInService)
	boxes, err := b.KV(context.Background(), events.BucketBoxes)
	if err != nil {
		t.Fatal(err)
	}
	waitBox(t, boxes, "mx", events.BoxOperational)
	got := incidentEvents(t, b, 2)
	if len(got) != 2 || !strings.HasSuffix(got[1], ".resolved") {
		t.Errorf("incident events %v, want it resolved once mx1 is out of service", got)
	}
	tookOut(t, resolution(t, b))
}

// TestFlappingIsToldOnce: a server going down and up again and again is
// marked flapping, and its incident tells staff so in one update.
func TestFlappingIsToldOnce(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	cfg := testConfig(t)
	changes := 3
	cfg.Checks.Flapping = config.Flapping{Changes: &changes, Window: config.Duration(time.Hour), Settle: config.Duration(time.Hour)}
	start(t, b, cfg)
	n := 0
	next := func() int { n++; return n }
	publishResult(t, b, "mx1", next(), true)
	for range 3 {
		publishResult(t, b, "mx1", next(), false)
		answer(t, b, "mx1", next(), false)
		waitState(t, b, "mx1", events.StateDown)
		publishResult(t, b, "mx1", next(), true)
		publishResult(t, b, "mx1", next(), true)
		waitState(t, b, "mx1", events.StateUp)
	}
	ctx := context.Background()
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectIncidents}})
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for {
		m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		ev, err := events.Decode(m.Subject(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		switch d := ev.Data.(type) {
		case *events.IncidentOpened:
			said = append(said, "opened")
		case *events.IncidentUpdated:
			if len(d.Flapping) > 0 {
				said = append(said, fmt.Sprintf("updated flapping %v", d.Flapping))
			} else {
				// Its box, degraded and whole again with it: told as
				// such, in updates that page nobody.
				said = append(said, fmt.Sprintf("box %s", d.Boxes[0].State))
			}
		case *events.IncidentResolved:
			said = append(said, "resolved")
		}
	}
	// First outage: opened, resolved. Second: opened, and its recovery is
	// the fourth change: flapping, told once. Third: nothing new but the
	// box going down and up with it.
	if want := "opened resolved opened updated flapping [mx1] box operational box degraded box operational"; strings.Join(said, " ") != want {
		t.Errorf("incident events %q, want %q", said, want)
	}
}

// TestDownServerRemovedFromConfig: a server down with an incident open,
// then removed from the config, leaves its incident at the next start,
// which resolves it.
func TestDownServerRemovedFromConfig(t *testing.T) {
	t.Parallel()
	b := mx1DownThenStopped(t)

	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1m, recover_after: 2, verify: {locations: 1, quorum: 1}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx2, check: "tcp://127.0.0.1:26"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	start(t, b, cfg)
	got := incidentEvents(t, b, 2)
	if len(got) != 2 || !strings.HasSuffix(got[1], ".resolved") {
		t.Errorf("incident events %v, want it resolved once mx1 is out of the config", got)
	}
	tookOut(t, resolution(t, b))
	ctx := context.Background()
	ikv, err := b.KV(ctx, events.BucketIncidents)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := countOpen(ctx, ikv); err != nil || n != 0 {
		t.Errorf("%d incidents still listed open (%v)", n, err)
	}
}
