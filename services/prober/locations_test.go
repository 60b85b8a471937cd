package prober

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// TestLocationStopsAndItsShareMoves runs three probers at three locations;
// one of them dies without a word (its connection cut, its heartbeat left to
// expire). Once its last heartbeat has run out and the windows published
// before have passed, the other two take every slot; no slot is
// ever checked twice; no server is checked from the same place twice in a row.
func TestLocationStopsAndItsShareMoves(t *testing.T) {
	t.Parallel()
	// A heartbeat vouches for 1.8s, beating every 200ms: a prober starved
	// of the CPU for a moment on a busy machine is not taken for dead,
	// and one that died is within one interval.
	const interval = 2 * time.Second
	const ttl = 1800 * time.Millisecond
	// moved is how soon after a location stops no check is given to it:
	// its last heartbeat's TTL, and then a window is judged by the
	// heartbeats of settle before it is published, scheduleLead before it
	// begins, and holds a window's checks.
	const moved = ttl + settle + scheduleLead + window
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	var yaml strings.Builder
	yaml.WriteString("site: {name: Test}\nlocations: [lon1, ams1, nyc1]\nchecks: {interval: 2s, timeout: 500ms}\nstaff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}\nboxes:\n  - id: web\n    name: Web\n    servers:\n")
	servers := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	for _, s := range servers {
		yaml.WriteString("      - {id: " + s + ", check: \"" + web.URL + "/" + s + "\"}\n")
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	type running struct {
		b      *bus.Bus
		cancel context.CancelFunc
		done   chan error
	}
	probers := map[string]*running{}
	for _, loc := range cfg.Locations {
		b := srv.Connect(t, log)
		p, err := New(cfg, Options{Location: loc, Heartbeat: 200 * time.Millisecond, HeartbeatTTL: ttl}, Deps{Bus: b, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{b: b, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- p.Run(ctx) }()
		probers[loc] = r
	}
	// Wait until all three have announced themselves.
	lkv, err := srv.Connect(t, log).KV(context.Background(), events.BucketLocations)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := locations.Watch(context.Background(), lkv, time.Now, cfg.Locations)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "all three locations announced", func() bool { return len(watch.List()) == 3 })

	// Results as they are stored: the test goes on when what it waits for
	// has been checked, not after a guessed time.
	var mu sync.Mutex
	checked := map[string]map[int64]string{} // server → slot → location
	rc, err := srv.Connect(t, log).JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := rc.Consume(func(m jetstream.Msg) {
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		if err != nil {
			return // the final read below reports it
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			slot, _ := strconv.ParseInt(r.Task[strings.LastIndexByte(r.Task, '/')+1:], 10, 64)
			if checked[r.Server] == nil {
				checked[r.Server] = map[int64]string{}
			}
			checked[r.Server][slot] = r.Location
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	// every says whether each server was checked in every slot due from
	// from on, up to n of them, and by which locations.
	every := func(from time.Time, n int64) (bool, map[string]bool) {
		mu.Lock()
		defer mu.Unlock()
		by := map[string]bool{}
		for _, s := range servers {
			off := schedule.Offset(s, interval)
			first, due := schedule.SlotAt(from, interval, off)
			if due.Before(from) {
				first++
			}
			for slot := first; slot < first+n; slot++ {
				loc, ok := checked[s][slot]
				if !ok {
					return false, by
				}
				by[loc] = true
			}
		}
		return true, by
	}

	// Every location takes its share of two rounds once the probers have
	// agreed on their rotation.
	started := time.Now()
	wait.For(t, "two rounds checked from all three locations", func() bool {
		ok, by := every(started.Add(interval), 2)
		return ok && len(by) == 3
	})

	// nyc1 dies: its connection is cut before it can withdraw its heartbeat.
	stopped := time.Now()
	probers["nyc1"].b.NC.Close()
	probers["nyc1"].cancel()
	<-probers["nyc1"].done
	// Its share moves: two rounds after that are checked from the two
	// others.
	wait.For(t, "two rounds checked after nyc1's share moved", func() bool {
		ok, _ := every(stopped.Add(moved), 2)
		return ok
	})
	end := time.Now()
	for _, loc := range []string{"lon1", "ams1"} {
		probers[loc].cancel()
		if err := <-probers[loc].done; err != nil {
			t.Fatal(err)
		}
	}

	// Every result, by server and slot.
	type check struct {
		slot     int64
		location string
	}
	bySlot := map[string]map[int64][]string{}
	for _, evs := range readResults(t, srv.Connect(t, log)).results {
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			slot, _ := strconv.ParseInt(r.Task[strings.LastIndexByte(r.Task, '/')+1:], 10, 64)
			if bySlot[r.Server] == nil {
				bySlot[r.Server] = map[int64][]string{}
			}
			bySlot[r.Server][slot] = append(bySlot[r.Server][slot], r.Location)
		}
	}

	from := map[string]int{}
	for _, s := range servers {
		off := schedule.Offset(s, interval)
		var checks []check
		for slot, locs := range bySlot[s] {
			if len(locs) != 1 {
				t.Errorf("%s slot %d checked %d times, from %v", s, slot, len(locs), locs)
			}
			checks = append(checks, check{slot, locs[0]})
			if due := schedule.Due(slot, interval, off); locs[0] == "nyc1" && due.After(stopped.Add(moved)) {
				t.Errorf("%s slot %d due %v, %s after nyc1 stopped, was given to nyc1", s, slot, due, moved)
			}
		}
		sort.Slice(checks, func(i, j int) bool { return checks[i].slot < checks[j].slot })
		for i := 1; i < len(checks); i++ {
			if schedule.Due(checks[i-1].slot, interval, off).Before(started.Add(interval)) {
				continue // while the probers were starting there was no choice yet
			}
			if checks[i].slot == checks[i-1].slot+1 && checks[i].location == checks[i-1].location {
				t.Errorf("%s checked from %s in slots %d and %d in a row (due %s; started %s, nyc1 stopped %s, end %s)", s, checks[i].location, checks[i-1].slot, checks[i].slot,
					schedule.Due(checks[i].slot, interval, off).Format("05.000"), started.Format("05.000"), stopped.Format("05.000"), end.Format("05.000"))
			}
		}
		// Every slot due from once the share moved until shortly before
		// the end was checked by lon1 or ams1.
		first, _ := schedule.SlotAt(stopped.Add(moved), interval, off)
		last, _ := schedule.SlotAt(end.Add(-interval), interval, off)
		for slot := first + 1; slot <= last; slot++ {
			if len(bySlot[s][slot]) == 0 {
				t.Errorf("%s slot %d (due %v) was never checked; stopped at %v", s, slot, schedule.Due(slot, interval, off).Format("15:04:05.000"), stopped.Format("15:04:05.000"))
			}
		}
		for _, c := range checks {
			from[c.location]++
		}
	}
	if from["lon1"] == 0 || from["ams1"] == 0 || from["nyc1"] == 0 {
		t.Errorf("checks by location %v: want every location to have checked", from)
	}
}
