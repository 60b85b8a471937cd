package main

import (
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func serverID(i int) string { return benchkit.ServerID(i) }

func serverIndex(id string) (int, bool) {
	if !strings.HasPrefix(id, "s") {
		return 0, false
	}
	i, err := strconv.Atoi(id[1:])
	return i, err == nil
}

// offset and due must stay the same as Offset and Due in
// services/prober/internal/schedule, which this program cannot import:
// results do not carry when their task was due, so it is worked out again
// from the server and the slot in the task id "server/slot". A check
// counted as starting before it was due means they no longer agree.
func offset(server string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(server))
	return time.Duration(h.Sum64() % uint64(interval))
}

func due(slot int64, interval, offset time.Duration) time.Time {
	return time.Unix(0, slot*int64(interval)+int64(offset))
}

// slotsDue is how many slots of a server fall due in [from, to).
func slotsDue(server string, interval time.Duration, from, to time.Time) int {
	off := int64(offset(server, interval))
	ceil := func(t time.Time) int64 {
		n := t.UnixNano() - off
		return (n + int64(interval) - 1) / int64(interval)
	}
	return int(ceil(to) - ceil(from))
}

// tally counts the results. Checks started in the window give the rate,
// the failures and the CPU per check; checks due in the window give the
// lateness and the checks missed.
type tally struct {
	servers  int
	interval time.Duration

	mu       sync.Mutex
	from, to time.Time // zero until the window opens
	closed   bool
	started  int // checks started in the window
	failed   int
	reasons  map[string]int
	ran      int             // checks due in the window that ran
	late     []time.Duration // their lateness: started minus due
	early    int             // checks that started before they were due
	twice    int             // slots checked twice
	last     []int64         // per server, the last slot seen
	results  int             // all results, window or not
	bad      int             // results that did not decode
	decoding time.Duration   // time spent decoding results in the window
}

func newTally(servers int, interval time.Duration) *tally {
	t := &tally{servers: servers, interval: interval, reasons: map[string]int{}, last: make([]int64, servers)}
	for i := range t.last {
		t.last[i] = -1
	}
	return t
}

func (t *tally) open(from, to time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.from, t.to = from, to
}

func (t *tally) undecodable(took time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bad++
	t.decoding += took
}

func (t *tally) add(r *events.ProbeResult, took time.Duration) {
	i, iok := serverIndex(r.Server)
	slot, err := strconv.ParseInt(r.Task[strings.LastIndexByte(r.Task, '/')+1:], 10, 64)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.results++
	if err != nil || !iok || i >= t.servers {
		t.bad++
		return
	}
	if t.last[i] == slot {
		t.twice++
	}
	t.last[i] = slot
	if t.from.IsZero() {
		return
	}
	if !r.Started.Before(t.from) && r.Started.Before(t.to) {
		t.started++
		t.decoding += took
		if !r.OK {
			t.failed++
			t.reasons[r.Reason]++
		}
	}
	d := due(slot, t.interval, offset(r.Server, t.interval))
	if d.Before(t.from) || !d.Before(t.to) {
		return
	}
	t.ran++
	late := r.Started.Sub(d)
	if late < 0 {
		t.early++
	}
	t.late = append(t.late, late)
}

func (t *tally) doneCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ran
}

// dueIn is how many checks fall due in [from, to) across the fleet.
func (t *tally) dueIn(from, to time.Time) int {
	n := 0
	for i := range t.servers {
		n += slotsDue(serverID(i), t.interval, from, to)
	}
	return n
}

// tallied is what the tally holds once closed.
type tallied struct {
	started, failed, ran, early, twice, results, bad int
	reasons                                          map[string]int
	decoding                                         time.Duration
	p50, p99, max                                    time.Duration
}

// close stops counting and sums up.
func (t *tally) close() tallied {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	s := tallied{
		started: t.started, failed: t.failed, ran: t.ran, early: t.early, twice: t.twice,
		results: t.results, bad: t.bad, reasons: t.reasons, decoding: t.decoding,
	}
	slices.Sort(t.late)
	s.p50, s.p99 = percentile(t.late, 0.50), percentile(t.late, 0.99)
	if len(t.late) > 0 {
		s.max = t.late[len(t.late)-1]
	}
	return s
}

// percentile of sorted values, by the nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
