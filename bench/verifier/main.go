// Command verifier measures how many probe results per second the verifier
// judges, and how long a result that changes a server's state takes to
// come out as a state change. It runs the verifier service against an
// embedded JetStream server, as `tocsin run` does on one box.
//
//	go run ./bench/verifier -servers 10000 -results 1000000
//
// docs/benchmarks.md explains the figures and keeps the results.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier"
)

func main() {
	servers := flag.Int("servers", 10000, "servers in the fleet, two to a box")
	results := flag.Int("results", 1_000_000, "results published before the verifier starts, then drained")
	changes := flag.Int("changes", 2000, "results that change a server's state, timed one by one")
	rate := flag.Int("rate", 20000, "results per second of the background load while the changes are timed")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the drain to this file")
	batch := flag.Int("batch", 1, "successes to a message, as a prober batches them (1: each alone)")
	flag.Parse()
	if *batch < 1 || *batch > events.MaxBatchResults {
		fmt.Fprintf(os.Stderr, "bench/verifier: -batch must be from 1 to %d\n", events.MaxBatchResults)
		os.Exit(2)
	}
	benchkit.Exit("bench/verifier", run(*servers, *results, *changes, *rate, *batch, *profile, os.Stdout))
}

func run(servers, results, changes, rate, batch int, profile string, out io.Writer) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, stopNATS, err := benchkit.JetStream("verifier")
	if err != nil {
		return err
	}
	defer stopNATS()
	b, err := bus.Connect("", ns, "bench verifier", log)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Ensure(ctx, 1); err != nil {
		return err
	}
	cfg, err := config.Parse("bench.yaml", fleet(servers), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}

	// Phase 1: a backlog of successes, drained as fast as the verifier can.
	pub, err := bus.Connect("", ns, "bench publisher", log)
	if err != nil {
		return err
	}
	defer pub.Close()
	t0 := time.Now()
	start := time.Now().Add(-time.Hour)
	var gathered []success
	for i := range results {
		s := i % servers
		at := start.Add(time.Duration(i/servers) * time.Second)
		gathered = append(gathered, success{s, at, fmt.Sprintf("b%d", i)})
		if len(gathered) == batch || i == results-1 {
			if err := publishSuccesses(pub, gathered); err != nil {
				return err
			}
			gathered = gathered[:0]
		}
	}
	select {
	case <-pub.JS.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("publishing the backlog took over 5 minutes")
	}
	fmt.Fprintf(out, "published %d results for %d servers, %d to a message, in %s\n", results, servers, batch, time.Since(t0).Round(time.Millisecond))

	vctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = verifier.New(cfg, verifier.Deps{Bus: b, Log: log}).Run(vctx) })

	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	u0, s0 := cpu()
	m0 := machineBusy()
	began := time.Now()
	// The first result of a server costs more than the rest (its record is
	// read, written, and its box judged), so the drain is also timed in two
	// parts: until every server's first result is acknowledged (the backlog
	// holds them first, in stream order), and the rest.
	var firstTook time.Duration
	var uf, sf time.Duration
	firsts := uint64(min(servers, results))
	firstMessages := (firsts + uint64(batch) - 1) / uint64(batch) // the messages that hold them
	for {
		c, err := b.JS.Consumer(ctx, events.StreamResults, "verifier")
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && firstTook == 0 && info.AckFloor.Stream >= firstMessages {
				firstTook = time.Since(began)
				uf, sf = cpu()
			}
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0 {
				break
			}
		}
		if time.Since(began) > 10*time.Minute {
			return fmt.Errorf("the backlog was not drained in 10 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(began)
	u1, s1 := cpu()
	m1 := machineBusy()
	pprof.StopCPUProfile()
	fmt.Fprintf(out, "drained %d results in %s: %.0f results/s, %.3f CPU-s per 1,000 results (verifier, JetStream and publisher in one process)\n",
		results, took.Round(time.Millisecond), float64(results)/took.Seconds(), ((u1-u0)+(s1-s0)).Seconds()*1000/float64(results))
	if rest := results - int(firsts); firstTook > 0 && rest > 0 {
		fmt.Fprintf(out, "  of which the first result of each of %d servers in %s, the other %d at %.0f results/s, %.3f CPU-s per 1,000\n",
			firsts, firstTook.Round(time.Millisecond), rest, float64(rest)/(took-firstTook).Seconds(), ((u1-uf)+(s1-sf)).Seconds()*1000/float64(rest))
	}
	if m0 > 0 && m1 > m0 {
		// Anything else running shows as the difference: figures taken
		// with much of it are not comparable.
		fmt.Fprintf(out, "  the machine was busy for %.1f CPU-s meanwhile, this process for %.1f\n", (m1 - m0).Seconds(), ((u1 - u0) + (s1 - s0)).Seconds())
	}

	// Phase 2: under a background load of successes, failures of servers
	// that are up, each timed from its publication to its state change.
	sub, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectServerChanges}, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	sent := map[string]time.Time{}
	var lat []time.Duration
	cc, err := sub.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Subject(), m.Data())
		if err != nil {
			return
		}
		c := ev.Data.(*events.ServerStateChanged)
		if c.To != events.StateSuspect {
			return
		}
		mu.Lock()
		if t, ok := sent[c.Server]; ok {
			lat = append(lat, time.Since(t))
			delete(sent, c.Server)
		}
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	bg, bgStop := context.WithCancel(ctx)
	defer bgStop()
	var bgWG sync.WaitGroup
	bgWG.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; bg.Err() == nil; i++ {
			<-tick.C
			var load []success
			for j := range rate / 100 {
				n := i*(rate/100) + j
				load = append(load, success{n % servers, time.Now(), fmt.Sprintf("g%d", n)})
				if len(load) == batch || j == rate/100-1 {
					publishSuccesses(pub, load)
					load = load[:0]
				}
			}
		}
	})
	time.Sleep(time.Second)
	for i := range changes {
		s := (i * 7919) % servers
		mu.Lock()
		sent[serverID(s)] = time.Now()
		mu.Unlock()
		if err := publishAsync(pub, s, time.Now().Add(time.Minute), false, fmt.Sprintf("f%d", i)); err != nil {
			return err
		}
		time.Sleep(time.Second / time.Duration(max(changes/10, 1)))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= changes || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	bgStop()
	bgWG.Wait()
	mu.Lock()
	slices.Sort(lat)
	got := len(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	if got > 0 {
		fmt.Fprintf(out, "state changes under %d results/s: %d of %d timed; result to state change p50 %s, p99 %s, max %s\n",
			rate, got, changes, p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	}
	mu.Unlock()
	stop()
	wg.Wait()
	if got < changes {
		return fmt.Errorf("only %d of %d state changes seen", got, changes)
	}
	return runErr
}

func serverID(i int) string { return fmt.Sprintf("s%06d", i) }

// success is one successful check to publish.
type success struct {
	server int
	at     time.Time
	id     string
}

// publishSuccesses publishes successes alone, or together in one batch.
func publishSuccesses(b *bus.Bus, list []success) error {
	if len(list) == 1 {
		return publishAsync(b, list[0].server, list[0].at, true, list[0].id)
	}
	start := list[0].at
	for _, s := range list {
		if s.at.Before(start) {
			start = s.at
		}
	}
	bt := &events.ProbeResultBatch{Location: "lon1", Start: start}
	for _, s := range list {
		r := &events.ProbeResult{Server: serverID(s.server), Location: "lon1", Check: "tcp://127.0.0.1:1", Task: s.id, Purpose: events.PurposeScheduled, Started: s.at, OK: true}
		it, _ := events.Item(r, start)
		bt.Items = append(bt.Items, it)
	}
	id := "lon1/bench/" + list[0].id
	data, err := events.New(id, "bench", start, bt).Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(bt.Subject())
	m.Data = data
	return publishMsgAsync(b, m, id)
}

func publishAsync(b *bus.Bus, s int, at time.Time, ok bool, id string) error {
	r := &events.ProbeResult{Server: serverID(s), Location: "lon1", Check: "tcp://127.0.0.1:1", Task: id, Purpose: events.PurposeScheduled, Started: at, OK: ok}
	if !ok {
		r.Reason = "connection refused"
	}
	data, err := events.New(id, "bench", at, r).Marshal()
	if err != nil {
		return err
	}
	m := nats.NewMsg(r.Subject())
	m.Data = data
	return publishMsgAsync(b, m, id)
}

func publishMsgAsync(b *bus.Bus, m *nats.Msg, id string) error {
	for {
		_, err := b.JS.PublishMsgAsync(m, jetstream.WithMsgID(id))
		if err == nil || !strings.Contains(err.Error(), "too many outstanding") {
			return err
		}
		<-b.JS.PublishAsyncComplete()
	}
}

func fleet(servers int) []byte {
	var y strings.Builder
	y.WriteString("site: {name: Bench}\nlocations: [lon1]\nchecks: {interval: 5m, verify: {locations: 1, quorum: 1}}\n")
	y.WriteString("staff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 1, from: a@example.net, tls: none}}\nboxes:\n")
	for i := 0; i < servers; i += 2 {
		fmt.Fprintf(&y, "  - {id: b%d, name: Box %d, servers: [{id: %s, check: \"tcp://127.0.0.1:1\"}", i/2, i/2, serverID(i))
		if i+1 < servers {
			fmt.Fprintf(&y, ", {id: %s, check: \"tcp://127.0.0.1:1\"}", serverID(i+1))
		}
		y.WriteString("]}\n")
	}
	return []byte(y.String())
}

func cpu() (user, sys time.Duration) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// machineBusy is the CPU time all processes have used since boot, from
// /proc/stat (user, nice, system, irq, softirq, steal), or 0 where there is
// none.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
