package prober

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/prober/internal/schedule"
)

// TestWindowMessages: a window's checks are split the same way whatever
// order the queue gave them in, so that each server is in the same part of
// every replica's view; no check is due before its time; a check given to
// nobody goes to the scheduler's own location.
func TestWindowMessages(t *testing.T) {
	t.Parallel()
	start := windowStart(1795227300)
	var items []schedule.Item
	for i := range events.MaxScheduleChecks + 3 {
		items = append(items, schedule.Item{Key: "s" + strconv.Itoa(i), Slot: int64(i), Due: start.Add(time.Duration(i%1000) * time.Millisecond), Location: "ams1"})
	}
	items[0].Due = start.Add(999*time.Millisecond + 500*time.Microsecond)
	items[1].Location = ""
	want := windowMessages(start, append([]schedule.Item(nil), items...), "lon1")
	rand.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
	got := windowMessages(start, items, "lon1")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the parts depend on the queue's order (-first +shuffled):\n%s", diff)
	}
	if len(got) != 2 || len(got[0].Checks) != events.MaxScheduleChecks || len(got[1].Checks) != 3 {
		t.Fatalf("%d parts, want 2 of %d and 3 checks", len(got), events.MaxScheduleChecks)
	}
	for _, ws := range got {
		if err := ws.Validate(); err != nil {
			t.Errorf("part refused: %v", err)
		}
		for _, c := range ws.Checks {
			var it schedule.Item
			for _, i := range items {
				if i.Key == c.Server {
					it = i
				}
			}
			if ws.Due(c).Before(it.Due) || ws.Due(c).Sub(it.Due) >= time.Millisecond {
				t.Errorf("%s due %s in the window, %s in the queue", c.Server, ws.Due(c).Format("05.000000"), it.Due.Format("05.000000"))
			}
			if want := map[string]string{"s1": "lon1"}[c.Server]; want != "" && ws.Locations[c.Location] != want {
				t.Errorf("%s, given to nobody, went to %s", c.Server, ws.Locations[c.Location])
			}
		}
	}
}
