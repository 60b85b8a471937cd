package verifier

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestVerifierKilledAtRandom kills the verifier without warning (its
// connection cut mid-work, nothing drained) and starts it again, over and
// over, while five servers have a real outage and five others are seen
// failing from one location only. Exactly one incident opens and resolves
// for each real outage (three servers of one datacentre failing together
// are one outage), every server joins once, and the false alarms open none.
func TestVerifierKilledAtRandom(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and restarts the verifier for several seconds")
	}
	srv := bustest.Start(t)
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1, ams1, nyc1]
checks: {interval: 1m, timeout: 1s, recover_after: 2, verify: {locations: 2, quorum: 2}}
datacentres: {dc1: {name: One}, dc2: {name: Two}, dc3: {name: Three}}
boxes:
  - {id: a, name: A, datacentre: dc1, servers: [{id: s0, check: "tcp://127.0.0.1:1"}, {id: s1, check: "tcp://127.0.0.1:1"}, {id: s2, check: "tcp://127.0.0.1:1"}]}
  - {id: c, name: C, datacentre: dc2, servers: [{id: s3, check: "tcp://127.0.0.1:1"}]}
  - {id: d, name: D, datacentre: dc3, servers: [{id: s4, check: "tcp://127.0.0.1:1"}]}
  - {id: b, name: B, servers: [{id: s5, check: "tcp://127.0.0.1:1"}, {id: s6, check: "tcp://127.0.0.1:1"}, {id: s7, check: "tcp://127.0.0.1:1"}, {id: s8, check: "tcp://127.0.0.1:1"}, {id: s9, check: "tcp://127.0.0.1:1"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 1, from: a@example.net, tls: none}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// The verifiers' log, whose end a failure shows.
	logPath := filepath.Join(t.TempDir(), "verifier.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("the verifiers' log ends:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	}()
	log := slog.New(slog.NewTextHandler(logFile, nil))
	world := srv.Connect(t, log) // the probers' side: results and answers
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The truth: a server is down, or seen failing from lon1 alone.
	var mu sync.Mutex
	down, fault := map[string]bool{}, map[string]bool{}
	truth := func(server, location string) bool {
		mu.Lock()
		defer mu.Unlock()
		return !down[server] && !(fault[server] && location == "lon1")
	}
	lkv, err := world.KV(ctx, events.BucketLocations)
	if err != nil {
		t.Fatal(err)
	}
	for _, loc := range cfg.Locations {
		hb := fmt.Sprintf(`{"location":%q,"instance":"i","since":"2020-01-01T00:00:00Z","ttl_ms":3600000}`, loc)
		if _, err := lkv.Put(ctx, loc+".i", []byte(hb)); err != nil {
			t.Fatal(err)
		}
	}

	var seq atomic.Int64
	report := func(server, location, task, correlation string) {
		n := seq.Add(1)
		at := time.Now()
		r := &events.ProbeResult{Server: server, Location: location, Check: "tcp://127.0.0.1:1", Task: task,
			Purpose: events.PurposeScheduled, Correlation: correlation, Started: at, OK: truth(server, location)}
		if !r.OK {
			r.Reason = "connection refused"
		}
		if err := world.Publish(ctx, events.New(fmt.Sprintf("r%d", n), "prober@"+location, at, r)); err != nil && ctx.Err() == nil {
			t.Errorf("publish: %v", err)
		}
	}
	// Scheduled checks from lon1, every 40 ms per server.
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for ctx.Err() == nil {
			for i := range 10 {
				report(fmt.Sprintf("s%d", i), "lon1", "scheduled", "")
			}
			time.Sleep(40 * time.Millisecond)
		}
	})
	// The other locations answer re-checks truthfully.
	tasks, err := world.JS.CreateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tasks.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Subject(), m.Data())
		if err == nil {
			task := ev.Data.(*events.ProbeTask)
			report(task.Server, task.Location, ev.ID, task.Correlation)
		}
		m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	// The verifier, killed and started again every 100 to 500 ms: long
	// enough, most times, to start and judge a few results.
	var kills atomic.Int64
	wg.Go(func() {
		for ctx.Err() == nil {
			b := srv.Connect(t, log)
			b.TakeOver = 300 * time.Millisecond // the next instance takes over from a killed one at once
			vctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				New(cfg, Deps{Bus: b, Log: log}, WithAckWait(time.Second)).Run(vctx)
				close(done)
			}()
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(100+rand.IntN(400)) * time.Millisecond):
			}
			b.NC.Close() // no drain, no goodbye
			stop()
			<-done
			kills.Add(1)
		}
	})

	// Count what reached the stream, per incident.
	count := func() tallies {
		incidents := tallies{}
		for _, ev := range bustest.Events(t, world, events.StreamEvents, events.SubjectIncidents) {
			incidents.add(ev)
		}
		return incidents
	}
	// until waits, 90 s at most, for what the incidents say to hold,
	// the verifier being killed all the while: on a busy machine a
	// verifier that lives 50 ms at a time may take long to get there.
	until := func(what string, ok func(tallies) bool) {
		if !wait.Until(context.Background(), 90*time.Second, wait.Spaced(200*time.Millisecond, func() bool { return ok(count()) })) {
			t.Errorf("after 90 s, still not %s", what)
		}
	}
	servers := func(incidents tallies, resolved bool) int {
		n := 0
		for _, inc := range incidents {
			if !resolved || inc.resolved > 0 {
				n += len(inc.added)
			}
		}
		return n
	}

	// The script: five outages and five faults seen from lon1 alone, kept
	// until the outages are all in incidents, then all mended.
	time.Sleep(time.Second)
	mu.Lock()
	for i := range 5 {
		down[fmt.Sprintf("s%d", i)] = true
		fault[fmt.Sprintf("s%d", i+5)] = true
	}
	mu.Unlock()
	until("every outage in an incident", func(in tallies) bool { return servers(in, false) >= 5 })
	time.Sleep(time.Second) // the faults go on a while longer
	mu.Lock()
	clear(down)
	clear(fault)
	mu.Unlock()
	until("every incident resolved", func(in tallies) bool { return servers(in, true) >= 5 })
	// Time for anything that should not come, with the kills going on:
	// at least ten in all, however fast the outages went.
	for deadline := time.Now().Add(30 * time.Second); kills.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	incidents := count()
	cancel()
	wg.Wait()
	var got []string
	for _, inc := range incidents {
		slices.Sort(inc.added)
		got = append(got, fmt.Sprintf("%d opened, %d resolved, added %v, resolved with %v", inc.opened, inc.resolved, inc.added, inc.ended))
	}
	slices.Sort(got)
	t.Logf("verifier killed %d times; incidents: %q", kills.Load(), got)
	if kills.Load() < 10 {
		t.Errorf("the verifier was killed only %d times", kills.Load())
	}
	// One incident for the three servers of dc1 going down together, one
	// for each of the others; no server added twice, none for the faults.
	want := []string{
		"1 opened, 1 resolved, added [s0 s1 s2], resolved with [s0 s1 s2]",
		"1 opened, 1 resolved, added [s3], resolved with [s3]",
		"1 opened, 1 resolved, added [s4], resolved with [s4]",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("incidents (-want +got):\n%s", d)
	}
}
