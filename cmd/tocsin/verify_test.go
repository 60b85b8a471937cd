package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/demo"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestFalseAlarmsAreFilteredOut: three locations, one of which (nyc1,
// checking from 127.0.0.3) cannot reach any target while the other two can.
// A thousand failures seen from nyc1 open no incident; then a server that
// really stops answering is confirmed from the two others.
func TestFalseAlarmsAreFilteredOut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three probers and a verifier")
	}
	t.Parallel()
	// 100 servers every 2s, each slot checked from one location in turn:
	// 17 failures a second from nyc1 to clear, and few enough results that
	// the verifier keeps up under the race detector on a busy machine, so
	// that the real outage is judged on fresh results.
	const servers, faults = 100, 1000
	cfgFile, broken := unreachableFromNYC(t, servers, "2s")
	nats := bustest.Start(t)
	common := []string{"run", "--config", cfgFile, "--nats", nats.URL, "--shutdown-timeout", "10s", "--admin-listen", "127.0.0.1:0"}
	var procs []*process
	for i, loc := range []string{"lon1", "ams1", "nyc1"} {
		procs = append(procs, startProcess(t, append(common, "--services", "prober", "--location", loc, "--source-address", fmt.Sprintf("127.0.0.%d", i+1))...))
	}
	procs = append(procs, startProcess(t, append(common, "--services", "verifier")...))
	defer func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s:\n%s", strings.Join(p.args, " "), p.log.String())
			}
		}
	}()

	b := nats.Connect(t, nil)
	ctx := context.Background()
	// count counts the events on subject from the stream's own tally, and
	// reads them if they are incident events: a consumer is made only to
	// read, so that looking often does not fill the server with them.
	count := func(subject string) (int, []jetstream.Msg) {
		s, err := b.JS.Stream(ctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, k := range info.State.Subjects {
			n += int(k)
		}
		var msgs []jetstream.Msg
		if subject == events.SubjectIncidents && n > 0 {
			c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
			if err != nil {
				t.Fatal(err)
			}
			batch, err := c.FetchNoWait(n)
			if err != nil {
				t.Fatal(err)
			}
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
		}
		return n, msgs
	}

	// Under a minute on an idle machine; several under the race detector
	// beside other tests. It waits as long as false alarms keep coming,
	// within a bound.
	start, last, lastAt := time.Now(), 0, time.Now()
	// A look asks the server to tally the stream by subject: taken at
	// wait's pace, a hundred a second, it would be load of its own on the
	// verifier's machine.
	wait.Within(t, 6*time.Minute, fmt.Sprintf("%d false alarms", faults), wait.Spaced(250*time.Millisecond, func() bool {
		n, _ := count(events.SubjectFalseAlarms)
		if n > last {
			last, lastAt = n, time.Now()
		}
		if n < faults && time.Since(lastAt) > time.Minute {
			t.Fatalf("only %d false alarms in %v, the last %v ago", n, time.Since(start).Round(time.Second), time.Since(lastAt).Round(time.Second))
		}
		return n >= faults
	}))
	t.Logf("%d false alarms in %v", last, time.Since(start).Round(time.Second))
	if n, msgs := count(events.SubjectIncidents); n != 0 {
		t.Fatalf("%d incident events for faults only one location saw, first %s", n, msgs[0].Subject())
	}

	// A real outage: s7 answers 503 to everyone.
	broken.Store("s7")
	var opened *events.IncidentOpened
	wait.Within(t, 3*time.Minute, "the real outage confirmed", wait.Spaced(100*time.Millisecond, func() bool {
		_, msgs := count(events.SubjectIncidents)
		for _, m := range msgs {
			ev, err := events.Decode(m.Subject(), m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if o, ok := ev.Data.(*events.IncidentOpened); ok {
				if o.Servers[0].Server != "s7" {
					t.Fatalf("incident for %s, which nobody broke: %+v", o.Servers[0].Server, o)
				}
				opened = o
			}
		}
		return opened != nil
	}))
	a := opened.Servers[0]
	seen := strings.Join(a.Locations, ",")
	if !strings.Contains(seen, "lon1") || !strings.Contains(seen, "ams1") || a.Verification != "confirmed by 2 of 2 re-checks" {
		t.Errorf("incident seen from %s (%s), want confirmed by lon1 and ams1", seen, a.Verification)
	}
}

// unreachableFromNYC starts web servers s0, s1, … on loopback that answer
// 200, except the one named in broken (503), and that cut every
// connection from 127.0.0.3, where the tests' nyc1 checks from. It writes
// a config checking them every interval from lon1, ams1 and nyc1 (each
// failure verified from the two others), in boxes of five, and returns the
// config's path.
func unreachableFromNYC(t *testing.T, servers int, interval string) (cfgFile string, broken *atomic.Value) {
	t.Helper()
	const perBox = 5
	broken = &atomic.Value{}
	broken.Store("")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/"+broken.Load().(string) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	go web.Serve(demo.Cutting{Listener: l, Cut: func(host string) bool { return host == "127.0.0.3" }})
	t.Cleanup(func() { web.Close() })

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "site: {name: Example Hosting}\nchecks: {interval: %s, timeout: 500ms, verify: {locations: 2, quorum: 2}}\nlocations: [lon1, ams1, nyc1]\n", interval)
	cfg.WriteString("staff: [{name: Alice, email: alice@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 1, from: alarm@example.net, tls: none}}\n")
	cfg.WriteString("roles: {web: {label: Web hosting, colour: \"#2e86de\"}}\n")
	// Boxes of a few servers each, as a host's are: a server's change has
	// the verifier judge its box again from every server of it.
	cfg.WriteString("boxes:\n")
	for i := range servers {
		if i%perBox == 0 {
			fmt.Fprintf(&cfg, "  - id: web%d\n    name: Web %d\n    role: web\n    servers:\n", i/perBox, i/perBox)
		}
		fmt.Fprintf(&cfg, "      - {id: s%d, check: \"http://%s/s%d\"}\n", i, l.Addr(), i)
	}
	cfgFile = filepath.Join(t.TempDir(), "tocsin.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile, broken
}
