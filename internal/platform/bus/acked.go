package bus

import "sync"

// ackedHere remembers the stream sequences of the last messages this
// instance handled and acknowledged late, past half their ack wait. A
// message can wait in a worker's queue past its ack wait when handling
// falls behind; JetStream then sends it again, and the copy arrives while,
// or after, the first is handled. Acknowledging either clears it, so the
// copy need not be handled.
type ackedHere struct {
	mu    sync.Mutex
	limit int
	seqs  map[uint64]struct{}
	ring  []uint64 // the last limit added; once full, the oldest at next
	next  int
}

func newAckedHere(limit int) *ackedHere {
	return &ackedHere{limit: limit, seqs: map[uint64]struct{}{}}
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
	if len(a.ring) < a.limit {
		a.ring = append(a.ring, seq)
	} else {
		delete(a.seqs, a.ring[a.next])
		a.ring[a.next] = seq
		a.next = (a.next + 1) % a.limit
	}
	a.seqs[seq] = struct{}{}
}

func (a *ackedHere) has(seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.seqs[seq]
	return ok
}
