package clustertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// chaos kills a service process with SIGKILL at random moments and starts
// it again, until stopped: every service once a round, in an order and at
// times the seed makes repeatable.
type chaos struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	kills []string
	err   error
}

func startChaos(h *harness, seed uint64) *chaos {
	c := &chaos{stop: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	names := make([]string, 0, len(serviceProcs))
	for _, s := range serviceProcs {
		names = append(names, s.name)
	}
	go func() {
		defer close(c.done)
		var round []string
		for range 500 { // bounded: a kill every second or two for far longer than a test runs
			wait := time.Duration(500+rng.IntN(1500)) * time.Millisecond
			select {
			case <-c.stop:
				return
			case <-time.After(wait):
			}
			if len(round) == 0 { // every service once a round, in a random order
				round = slices.Clone(names)
				rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
			}
			name := round[0]
			round = round[1:]
			p := h.procs[name]
			p.kill()
			c.mu.Lock()
			c.kills = append(c.kills, fmt.Sprintf("%s@%s", name, time.Now().Format("15:04:05.000")))
			c.mu.Unlock()
			// Down for a random while: the timing is what the chaos is made of.
			time.Sleep(time.Duration(rng.IntN(1000)) * time.Millisecond)
			if err := p.startErr(); err != nil {
				c.mu.Lock()
				c.err = err
				c.mu.Unlock()
				return
			}
		}
	}()
	return c
}

// end stops the kills and returns which processes were killed when.
func (c *chaos) end() ([]string, error) {
	close(c.stop)
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.kills), c.err
}

// TestCrashes runs 20 incident lifecycles, a few at a time, while every
// service process is killed with SIGKILL at random moments and started
// again: every outage and every resolution must reach every person it is
// for. Duplicates are counted and reported.
func TestCrashes(t *testing.T) {
	build(t) // or skip, before anything else is set up
	t.Parallel()
	const servers, wave = 20, 2
	var dcs []string
	for i := range servers {
		dcs = append(dcs, fmt.Sprintf("dc%02d", i+1))
	}
	f := newFleet(t, servers, 1, dcs) // a datacentre each: one incident per outage
	h := newHarness(t, f, settings{interval: "1s", timeout: "500ms", groupWindow: "2m", ackWait: "5s"})
	h.startServices()
	var ids []string
	for _, s := range f.servers {
		ids = append(ids, s.id)
	}
	h.waitStates(ids, events.StateUp, 60*time.Second)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TOCSIN_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TOCSIN_CRASH_SEED %q: %v", s, err)
		}
	}
	t.Logf("crash seed %d (TOCSIN_CRASH_SEED=%d repeats the kills' order and timing)", seed, seed)
	c := startChaos(h, seed)
	stopped := false
	defer func() {
		if !stopped {
			c.end()
		}
	}()

	codes := map[string]string{}
	var all []string // incidents, in the order they opened
	for w := 0; w < servers; w += wave {
		batch := f.servers[w : w+wave]
		for _, s := range batch {
			s.port.close()
		}
		var incidents []string
		if !wait.Until(context.Background(), 90*time.Second, wait.Spaced(200*time.Millisecond, func() bool {
			incidents = incidents[:0]
			for _, s := range batch {
				id := h.incidentOf(s.id)
				if id == "" {
					return false
				}
				incidents = append(incidents, id)
			}
			return true
		})) {
			t.Fatalf("wave %d: not every server's incident opened within 90s: %v", w/wave+1, h.watch.snapshot())
		}
		for _, id := range incidents {
			codes[shortCode(id)] = id
		}
		all = append(all, incidents...)
		h.waitMessagesSoft(expected(incidents, kindDown), codes, 90*time.Second)
		for _, s := range batch {
			if err := s.port.open(); err != nil {
				t.Fatal(err)
			}
		}
		if !wait.Until(context.Background(), 90*time.Second, wait.Spaced(200*time.Millisecond, func() bool {
			snap := h.watch.snapshot()
			for _, id := range incidents {
				if snap[id].resolved == 0 {
					return false
				}
			}
			return true
		})) {
			t.Fatalf("wave %d: not every incident resolved within 90s", w/wave+1)
		}
		h.waitMessagesSoft(expected(incidents, kindDown, kindResolved), codes, 90*time.Second)
		t.Logf("wave %d of %d done: incidents %v", w/wave+1, servers/wave, incidents)
	}
	kills, err := c.end()
	stopped = true
	if err != nil {
		t.Fatalf("restarting a killed service: %v", err)
	}
	t.Logf("%d kills: %v", len(kills), kills)
	if len(kills) < len(serviceProcs) {
		t.Errorf("only %d kills: the lifecycles ended before every service was killed once", len(kills))
	}
	h.settled(60 * time.Second) // where a late duplicate would have shown
	h.watch.caughtUp(t, h.js, 60*time.Second)

	// Lost is a failure; a duplicate is counted and reported, with what
	// shows where it came from.
	duplicates := 0
	perServer := map[string][]string{}
	for id, in := range h.watch.snapshot() {
		for _, s := range in.servers {
			perServer[s] = append(perServer[s], id)
		}
		switch {
		case in.opened == 0 || in.resolved == 0:
			t.Errorf("incident %s (servers %v): opened %d times, resolved %d times; want once each", id, in.servers, in.opened, in.resolved)
		case in.opened > 1 || in.resolved > 1:
			duplicates += in.opened + in.resolved - 2
			t.Logf("duplicate: incident %s (servers %v) opened %d times, resolved %d times", id, in.servers, in.opened, in.resolved)
		}
	}
	for _, s := range f.servers {
		switch n := len(perServer[s.id]); {
		case n == 0:
			t.Errorf("server %s: its outage opened no incident", s.id)
		case n > 1:
			duplicates += n - 1
			t.Logf("duplicate: server %s's one outage opened %d incidents: %v", s.id, n, perServer[s.id])
		}
	}
	got := tally(h.mail.Messages(), h.sms.Messages(), codes)
	missing, duplicated, unexpected, dups := compare(got, expected(all, kindDown, kindResolved))
	if problems := pages(got, all, true); len(problems) > 0 {
		t.Errorf("SMS pages: %v; the SMS sent:%s", problems, h.smsSent())
	}
	if len(missing) > 0 {
		t.Errorf("%d messages lost: %v", len(missing), missing)
	}
	if len(unexpected) > 0 {
		t.Logf("messages besides those expected: %v", unexpected)
	}
	sameID, bad := h.watch.duplicateEvents()
	if len(bad) > 0 {
		t.Errorf("undecodable incident events: %v", bad)
	}
	t.Logf("duplicates: %d messages delivered more than once %v; %d incident events stored twice under one id; %d other duplicate incidents or events",
		dups, duplicated, sameID, duplicates)
	h.checkLogs()
}

// incidentOf is the incident opened for a server, "" if none is yet.
func (h *harness) incidentOf(server string) string {
	for id, in := range h.watch.snapshot() {
		if slices.Contains(in.servers, server) {
			return id
		}
	}
	return ""
}

// waitMessagesSoft waits until every wanted message has arrived, or fails
// the test at the end of it, not at once, so that every wave is seen.
func (h *harness) waitMessagesSoft(want []delivery, codes map[string]string, within time.Duration) {
	h.t.Helper()
	var got map[delivery]int
	if !wait.Until(context.Background(), within, wait.Spaced(250*time.Millisecond, func() bool {
		got = tally(h.mail.Messages(), h.sms.Messages(), codes)
		for _, d := range want {
			if got[d] == 0 {
				return false
			}
		}
		return true
	})) {
		missing, _, _, _ := compare(got, want)
		h.t.Errorf("after %v, messages still missing: %v", within, missing)
	}
}
