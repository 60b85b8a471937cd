// Package schedule decides when each server is due. Every scheduler replica
// computes the same slots and due times from the server id alone, so they
// agree without talking to each other, and JetStream's de-duplication of
// the id of each window's message leaves one view of every slot.
package schedule

import (
	"container/heap"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"time"
)

// Offset spreads servers across the interval: each server is due at the
// same point of every interval, and different servers at different points.
func Offset(server string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(server))
	return time.Duration(h.Sum64() % uint64(interval))
}

// SlotAt is the slot a server is in at t: the number of whole intervals
// since the Unix epoch, counted from its offset, and when that slot was due.
func SlotAt(t time.Time, interval, offset time.Duration) (slot int64, due time.Time) {
	n := t.UnixNano() - int64(offset)
	slot = n / int64(interval)
	return slot, Due(slot, interval, offset)
}

// Due is when a slot falls due.
func Due(slot int64, interval, offset time.Duration) time.Time {
	return time.Unix(0, slot*int64(interval)+int64(offset)).UTC()
}

// Item is one server in the queue.
type Item struct {
	Key      string
	Interval time.Duration
	Offset   time.Duration
	Slot     int64
	Due      time.Time
	// Prev is the location chosen for the slot before, "" when this
	// queue has not chosen it (the scheduler has just started); Location
	// is the one chosen for Slot.
	Prev, Location string
}

// Queue orders servers by the time their next slot is due.
type Queue struct{ h itemHeap }

// Add puts a server in the queue at its first slot: the current one if it fell
// due no more than grace ago (a restarted scheduler picks up where the last
// one was), otherwise the next.
func (q *Queue) Add(key string, interval time.Duration, now time.Time, grace time.Duration) {
	off := Offset(key, interval)
	slot, due := SlotAt(now, interval, off)
	if now.Sub(due) > grace {
		slot++
		due = Due(slot, interval, off)
	}
	heap.Push(&q.h, &Item{Key: key, Interval: interval, Offset: off, Slot: slot, Due: due})
}

// Next is when the earliest item is due; ok is false for an empty queue.
func (q *Queue) Next() (due time.Time, ok bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].Due, true
}

// PopDue removes and returns the items due at or before now, asks choose
// (when not nil) which location checks each, and queues each again at its
// following slot, remembering the choice as the next slot's Prev.
func (q *Queue) PopDue(now time.Time, choose func(Item) string) []Item {
	var due []Item
	for len(q.h) > 0 && !q.h[0].Due.After(now) {
		it := q.h[0]
		if choose != nil {
			it.Location = choose(*it)
		}
		due = append(due, *it)
		it.Slot++
		it.Due = Due(it.Slot, it.Interval, it.Offset)
		it.Prev, it.Location = it.Location, ""
		heap.Fix(&q.h, 0)
	}
	return due
}

// Len is the number of servers queued.
func (q *Queue) Len() int { return len(q.h) }

type itemHeap []*Item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].Due.Before(h[j].Due) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(*Item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Pick chooses the location that checks key in slot, among live (sorted, as
// every replica must see the same list). Each run of len(live) slots visits
// every location once in an order drawn afresh from the key and the run, so
// work is spread evenly, the order cannot be predicted from outside, and the
// same location is never chosen twice in a row when there is a choice. It
// depends on nothing but its arguments, so every scheduler picks alike.
func Pick(key string, slot int64, live []string) string {
	n := int64(len(live))
	switch n {
	case 0:
		return ""
	case 1:
		return live[0]
	case 2:
		return live[(int64(hash(key, 0)%2)+slot)&1]
	}
	run, pos := slot/n, slot%n
	if slot < 0 && pos != 0 {
		run, pos = run-1, pos+n
	}
	perm := permutation(key, run, int(n))
	if prev := permutation(key, run-1, int(n)); perm[0] == prev[n-1] {
		// A run begins where the last one ended: swap its first two. For
		// n > 2 this never touches a run's last place, so it needs no
		// look further back.
		perm[0], perm[1] = perm[1], perm[0]
	}
	return live[perm[pos]]
}

func permutation(key string, run int64, n int) []int {
	rng := rand.New(rand.NewPCG(hash(key, run), uint64(run)))
	return rng.Perm(n)
}

func hash(key string, n int64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	return h.Sum64()
}

// Choose is the location that checks key in slot: Pick among live, but
// never prev, the location that checked the slot before, when there is a
// choice. Every scheduler that saw the same live sets chose the same prev,
// so every one of them chooses alike.
func Choose(key string, slot int64, live []string, prev string) string {
	loc := Pick(key, slot, live)
	if loc != prev || len(live) < 2 {
		return loc
	}
	i := slices.Index(live, loc)
	return live[(i+1)%len(live)]
}

// lookBack is how many slots Previous replays.
const lookBack = 4

// Previous is the location that checked the slot before slot, for a
// scheduler that did not choose it (it has just started): the choices of
// the last few slots replayed from the live sets of their time, liveAt(due).
// Replicas that have run for a while remember their choices instead, so a
// replay only ever decides a scheduler's first slot of each server.
func Previous(key string, slot int64, interval, offset time.Duration, liveAt func(due time.Time) []string) string {
	prev := ""
	for s := slot - lookBack; s < slot; s++ {
		prev = Choose(key, s, liveAt(Due(s, interval, offset)), prev)
	}
	return prev
}
