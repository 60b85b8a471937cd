package bus

import "sync"

// ackedHere remembers the stream sequences of the last messages this
// instance handled and acknowledged. A message can wait in a worker's
// queue past its ack wait when handling falls behind; JetStream then sends
// it again, and the copy arrives while, or after, the first is handled.
// Acknowledging either clears it, so the copy need not be handled.
type ackedHere struct {
	mu   sync.Mutex
	seqs map[uint64]struct{}
	ring []uint64 // the last len(ring) added, oldest at next
	next int
}

func newAckedHere(n int) *ackedHere {
	return &ackedHere{seqs: make(map[uint64]struct{}, n), ring: make([]uint64, n)}
}

func (a *ackedHere) add(seq uint64) {
	if seq == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.seqs[seq]; ok {
		return
	}
	if old := a.ring[a.next]; old != 0 {
		delete(a.seqs, old)
	}
	a.ring[a.next] = seq
	a.next = (a.next + 1) % len(a.ring)
	a.seqs[seq] = struct{}{}
}

func (a *ackedHere) has(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.seqs[seq]
	return ok
}
