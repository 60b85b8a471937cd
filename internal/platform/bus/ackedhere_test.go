package bus

import "testing"

// TestAckedHereKeepsTheLast: it remembers the last n sequences added, and
// forgets older ones.
func TestAckedHereKeepsTheLast(t *testing.T) {
	a := newAckedHere(3)
	for seq := uint64(1); seq <= 5; seq++ {
		a.add(seq)
	}
	a.add(5) // again: no room taken
	for seq, want := range map[uint64]bool{1: false, 2: false, 3: true, 4: true, 5: true, 6: false} {
		if got := a.has(seq); got != want {
			t.Errorf("has(%d) = %v, want %v", seq, got, want)
		}
	}
}
