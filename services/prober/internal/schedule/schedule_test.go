package schedule

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)

func TestSlotsAreOnePerInterval(t *testing.T) {
	const interval = 5 * time.Minute
	off := Offset("mx1", interval)
	if off < 0 || off >= interval {
		t.Fatalf("offset %v outside [0, %v)", off, interval)
	}
	var q Queue
	q.Add("mx1", interval, t0, 0)
	var slots []int64
	for now := t0; now.Before(t0.Add(time.Hour)); now = now.Add(time.Second) {
		for _, it := range q.PopDue(now, nil) {
			if it.Due.After(now) || now.Sub(it.Due) >= time.Second {
				t.Fatalf("slot %d due %v popped at %v", it.Slot, it.Due, now)
			}
			if got, _ := SlotAt(it.Due, interval, off); got != it.Slot {
				t.Fatalf("slot %d is due at %v, which SlotAt places in slot %d", it.Slot, it.Due, got)
			}
			slots = append(slots, it.Slot)
		}
	}
	if len(slots) != 12 {
		t.Fatalf("an hour at 5m gave %d slots, want 12: %v", len(slots), slots)
	}
	for i := 1; i < len(slots); i++ {
		if slots[i] != slots[i-1]+1 {
			t.Fatalf("slots not consecutive: %v", slots)
		}
	}
}

func TestReplicasAgree(t *testing.T) {
	// Two schedulers started at different moments publish the same ids.
	var a, b Queue
	a.Add("web1", time.Minute, t0, 0)
	b.Add("web1", time.Minute, t0.Add(17*time.Second), 0)
	ids := func(q *Queue, from time.Time) map[string]bool {
		m := map[string]bool{}
		for now := from; now.Before(t0.Add(10 * time.Minute)); now = now.Add(500 * time.Millisecond) {
			for _, it := range q.PopDue(now, nil) {
				m[fmt.Sprintf("%s/%d", it.Key, it.Slot)] = true
			}
		}
		return m
	}
	ma, mb := ids(&a, t0), ids(&b, t0.Add(17*time.Second))
	common := 0
	for id := range mb {
		if ma[id] {
			common++
		}
	}
	if common < len(mb)-1 || len(mb) < 9 {
		t.Errorf("replicas share %d of %d ids: %v vs %v", common, len(mb), ma, mb)
	}
}

func TestRestartWithinGraceRepublishesCurrentSlot(t *testing.T) {
	const interval = time.Minute
	off := Offset("db1", interval)
	slot, due := SlotAt(t0, interval, off)
	tests := []struct {
		name     string
		now      time.Time
		wantSlot int64
	}{
		{"just after due", due.Add(time.Second), slot},
		{"after grace", due.Add(20 * time.Second), slot + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Queue
			q.Add("db1", interval, tt.now, 10*time.Second)
			got := q.PopDue(tt.now.Add(interval), nil)
			if len(got) == 0 || got[0].Slot != tt.wantSlot {
				t.Errorf("first slot = %v, want %d", got, tt.wantSlot)
			}
		})
	}
}

func TestOffsetsSpreadServers(t *testing.T) {
	const interval = 5 * time.Minute
	buckets := make([]int, 10)
	for i := range 10000 {
		buckets[Offset(fmt.Sprintf("server-%d", i), interval)*10/interval]++
	}
	for i, n := range buckets {
		if n < 800 || n > 1200 {
			t.Errorf("tenth %d of the interval has %d of 10000 servers: %v", i, n, buckets)
		}
	}
}

func TestPickNeverRepeatsAndSpreads(t *testing.T) {
	for _, live := range [][]string{{"a", "b"}, {"a", "b", "c"}, {"ams1", "fra1", "lon1", "nyc1", "sfo1", "sin1", "syd1"}} {
		t.Run(fmt.Sprint(len(live)), func(t *testing.T) {
			counts := map[string]int{}
			for s := range 200 {
				key := fmt.Sprintf("server-%d", s)
				prev := ""
				for slot := int64(1_000_000); slot < 1_000_000+int64(20*len(live)); slot++ {
					got := Pick(key, slot, live)
					if got == prev {
						t.Fatalf("%s: slot %d picks %s again", key, slot, got)
					}
					if again := Pick(key, slot, live); again != got {
						t.Fatalf("%s: slot %d picked %s then %s", key, slot, got, again)
					}
					prev = got
					counts[got]++
				}
			}
			want := 200 * 20
			for _, l := range live {
				if c := counts[l]; c < want*9/10 || c > want*11/10 {
					t.Errorf("location %s picked %d times, want about %d: %v", l, c, want, counts)
				}
			}
		})
	}
	if got := Pick("x", 5, nil); got != "" {
		t.Errorf("Pick with nobody live = %q", got)
	}
	if got := Pick("x", 5, []string{"only"}); got != "only" {
		t.Errorf("Pick with one live = %q", got)
	}
}

// TestChooseAcrossChangingLiveSets: as locations come and go, a queue
// that remembers its choices never sends a server to the same location
// twice in a row while another is live, and a replica that remembers
// chooses exactly as another that does.
func TestChooseAcrossChangingLiveSets(t *testing.T) {
	const interval = 10 * time.Second
	all := []string{"ams1", "lon1", "nyc1", "sin1"}
	// The live set changes every few slots, the same for every replica.
	liveAt := func(due time.Time) []string {
		n := due.Sub(t0) / (25 * time.Second)
		var live []string
		for i, l := range all {
			if (int(n)>>i)&1 == 0 || i == int(n)%len(all) {
				live = append(live, l)
			}
		}
		return live
	}
	choose := func(it Item) string {
		prev := it.Prev
		if prev == "" {
			prev = Previous(it.Key, it.Slot, it.Interval, it.Offset, liveAt)
		}
		return Choose(it.Key, it.Slot, liveAt(it.Due), prev)
	}
	for s := range 50 {
		key := fmt.Sprintf("server-%d", s)
		var a, b Queue
		a.Add(key, interval, t0, 0)
		b.Add(key, interval, t0, 0)
		prev := ""
		for now := t0; now.Before(t0.Add(time.Hour)); now = now.Add(time.Second) {
			ia, ib := a.PopDue(now, choose), b.PopDue(now, choose)
			if len(ia) != len(ib) {
				t.Fatalf("%s: replicas popped %d and %d items at %v", key, len(ia), len(ib), now)
			}
			for i, it := range ia {
				if it.Location != ib[i].Location {
					t.Fatalf("%s slot %d: replicas chose %s and %s", key, it.Slot, it.Location, ib[i].Location)
				}
				if it.Location == prev && len(liveAt(it.Due)) > 1 {
					t.Fatalf("%s slot %d: %s twice in a row, live %v", key, it.Slot, prev, liveAt(it.Due))
				}
				if !slices.Contains(liveAt(it.Due), it.Location) {
					t.Fatalf("%s slot %d: chose %s, not live (%v)", key, it.Slot, it.Location, liveAt(it.Due))
				}
				prev = it.Location
			}
		}
	}
}
