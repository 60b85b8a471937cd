package statuspage

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// bars are uptime bars as runs: each sets the bars from its day (0 the
// oldest) to the next run's.
func bars(days int, runs ...run) []float64 {
	out := make([]float64, days)
	for i, r := range runs {
		end := days
		if i+1 < len(runs) {
			end = runs[i+1].from
		}
		for d := r.from; d < end; d++ {
			out[d] = r.uptime
		}
	}
	return out
}

type run struct {
	from   int
	uptime float64
}

func TestUptime(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) // day 89
	ago := func(d float64) time.Time { return now.Add(-time.Duration(d * float64(24*time.Hour))) }
	change := func(at time.Time, from, to events.BoxState) boxChange { return boxChange{at, from, to} }
	const op, down = events.BoxOperational, events.BoxDown
	for _, c := range []struct {
		name    string
		state   events.BoxState
		since   time.Time
		history []boxChange
		want    []float64
	}{
		{"nothing known", op, time.Time{}, nil, bars(90, run{0, -1})},
		{"stable for longer than the bars", op, ago(200), nil, bars(90, run{0, 1})},
		{"down for longer than the bars", down, ago(200), nil, bars(90, run{0, 0})},
		{"in service for ten days", op, ago(10), nil, bars(90, run{0, -1}, run{79, 1})},
		{"an outage a month ago, the state before it told", op, ago(29.75),
			[]boxChange{change(ago(30), op, down), change(ago(29.75), down, op)},
			bars(90, run{0, 1}, run{59, 0.75}, run{60, 1})},
		{"an outage a month ago, replayed before the box's state is read", "", time.Time{},
			[]boxChange{change(ago(30), op, down), change(ago(29.75), down, op)},
			bars(90, run{0, 1}, run{59, 0.75}, run{60, 1})},
		{"the state before the first event not told, since older", down, ago(20),
			[]boxChange{change(ago(5), "", op)},
			bars(90, run{0, -1}, run{69, 0}, run{84, 0.5}, run{85, 1})},
		{"the state before the first event not told, since newer", down, ago(1),
			[]boxChange{change(ago(5), "", op)},
			bars(90, run{0, -1}, run{84, 1}, run{88, 0.5}, run{89, 0})},
		{"the state read before the last event", op, ago(40),
			[]boxChange{change(ago(5), op, down)},
			bars(90, run{0, 1}, run{84, 0.5}, run{85, 0})},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &box{state: c.state, since: c.since, history: c.history}
			if diff := cmp.Diff(b.uptime(90, now), c.want); diff != "" {
				t.Errorf("uptime (-got +want):\n%s", diff)
			}
		})
	}
}

// TestUptimeOfStableBox: a box whose state has not changed for longer than
// the bars show has them all in that state, with no event to tell of it.
func TestUptimeOfStableBox(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	since := time.Now().Add(-200 * 24 * time.Hour)
	s.put(t, events.BucketBoxes, "mx", events.BoxRecord{State: events.BoxOperational, Since: since})
	wait.For(t, "the box's state read", func() bool {
		body, _ := s.get(t, "/api/v2/components.json")
		return strings.Contains(body, `"updated_at":"`+stamp(since))
	})
	page, _ := s.get(t, "/")
	if got := strings.Count(page, `<span class="up" title=`); got != 90 {
		t.Errorf("%d days of the stable box up, want 90", got)
	}
	if got := strings.Count(page, `<span class="nodata" title=`); got != 90 {
		t.Errorf("%d days with no data, want 90, those of the box not read", got)
	}
	if !strings.Contains(page, "Availability over the last 90 days: 100.00%") {
		t.Errorf("the page does not give the stable box's availability:\n%s", page)
	}
}

// TestUptimeHistoryPruned: a box's changes older than the bars are
// forgotten, as they come and from the saved state, and the bars stay as
// they were.
func TestUptimeHistoryPruned(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cutoff := now.Add(-uptimeDays * 24 * time.Hour)
	var all []boxChange
	p := newPage(siteConfig(t), func() time.Time { return now })
	for at, from, to := now.Add(-200*24*time.Hour), events.BoxOperational, events.BoxDown; at.Before(now); at, from, to = at.Add(7*time.Hour), to, from {
		all = append(all, boxChange{at, from, to})
		p.boxChanged(&events.BoxStateChanged{Box: "mx", From: from, To: to, Since: at})
	}
	want := (&box{history: all}).uptime(uptimeDays, now)
	check := func(name string, b *box) {
		t.Helper()
		if h := b.history; len(h) < 2 || h[0].at.After(cutoff) || !h[1].at.After(cutoff) {
			t.Errorf("%s: kept %d changes of %d, want those after %v and the one before", name, len(h), len(all), cutoff)
		}
		if diff := cmp.Diff(b.uptime(uptimeDays, now), want); diff != "" {
			t.Errorf("%s: uptime (-got +want):\n%s", name, diff)
		}
	}
	check("as they come", p.boxes[0])

	snap := p.snapshot()
	sb := snap.Boxes["mx"]
	sb.History = nil
	for _, c := range all {
		sb.History = append(sb.History, savedChange{c.at, c.from, c.state})
	}
	snap.Boxes["mx"] = sb
	restored := newPage(siteConfig(t), func() time.Time { return now })
	restored.restore(snap)
	check("from the saved state", restored.boxes[0])
}
