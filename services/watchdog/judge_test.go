package watchdog

import (
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestJudge reads each case's lanes from a tiny language: per location,
// the slot each stage last recorded and how many seconds ago, as
// "scheduled=10@0 since=5 probed=9@1 judged=9@1 decided=9@1".
func TestJudge(t *testing.T) {
	now := time.Date(2026, 11, 21, 3, 15, 0, 0, time.UTC)
	every := time.Minute
	at := func(secs int) time.Time { return now.Add(-time.Duration(secs) * time.Second) }
	lane := func(sched, since int64, schedAgo int, stages ...any) Lane {
		l := Lane{events.StageScheduled: {Slot: sched, At: at(schedAgo), Since: since}}
		for i := 0; i < len(stages); i += 3 {
			l[stages[i].(string)] = events.CanaryStage{Slot: int64(stages[i+1].(int)), At: at(stages[i+2].(int))}
		}
		return l
	}
	all := func(slot, ago int) []any {
		return []any{events.StageProbed, slot, ago, events.StageJudged, slot, ago, events.StageDecided, slot, ago}
	}
	cases := []struct {
		name  string
		lanes map[string]Lane
		want  Verdict
	}{
		{"nothing ever issued", map[string]Lane{"lon1": {}}, Verdict{Reason: "scheduler: no canary issued yet"}},
		{"every stage carried the last slot", map[string]Lane{"lon1": lane(10, 1, 5, all(10, 4)...)}, Verdict{Healthy: true}},
		{"the newest slot still on its way", map[string]Lane{"lon1": lane(10, 1, 1, all(9, 50)...)}, Verdict{Healthy: true}},
		{"a scheduler just started: nothing late yet", map[string]Lane{"lon1": lane(10, 10, 1)}, Verdict{}},
		{"verifier stopped", map[string]Lane{"lon1": lane(10, 1, 1,
			events.StageProbed, 10, 1, events.StageJudged, 7, 185, events.StageDecided, 7, 185)},
			Verdict{Reason: "verifier: no canary judged since 03:11:55 UTC (3 intervals)"}},
		{"notifier stopped", map[string]Lane{"lon1": lane(10, 1, 1,
			events.StageProbed, 10, 1, events.StageJudged, 10, 1, events.StageDecided, 8, 120)},
			Verdict{Reason: "notifier: no canary decided since 03:13:00 UTC (2 intervals)"}},
		{"a notifier that never decided one", map[string]Lane{"lon1": lane(10, 1, 1,
			events.StageProbed, 10, 1, events.StageJudged, 10, 1)},
			Verdict{Reason: "notifier: no canary decided yet"}},
		{"one location's prober stuck, the other fine", map[string]Lane{
			"lon1": lane(10, 1, 1, all(10, 1)...),
			"ams1": lane(10, 1, 1, events.StageProbed, 5, 300, events.StageJudged, 5, 300, events.StageDecided, 5, 300),
		}, Verdict{Reason: "prober@ams1: no canary answered since 03:10:00 UTC (5 intervals)"}},
		{"a location gone altogether is not the pipeline", map[string]Lane{
			"lon1": lane(10, 1, 1, all(10, 1)...),
			"ams1": lane(4, 1, 400, all(4, 400)...),
		}, Verdict{Healthy: true}},
		{"every scheduler stopped", map[string]Lane{
			"lon1": lane(10, 1, 200, all(10, 200)...),
			"ams1": lane(10, 1, 190, all(10, 190)...),
		}, Verdict{Reason: "scheduler: no canary issued since 03:11:50 UTC (3 intervals)"}},
		{"the verifier stopped for two locations: said once", map[string]Lane{
			"lon1": lane(10, 1, 1, events.StageProbed, 10, 1, events.StageJudged, 6, 250),
			"ams1": lane(10, 1, 1, events.StageProbed, 10, 1, events.StageJudged, 6, 245),
		}, Verdict{Reason: "verifier: no canary judged since 03:10:55 UTC (4 intervals)"}},
		{"an old record of a stage far ahead counts for nothing", map[string]Lane{"lon1": lane(10, 1, 1,
			events.StageProbed, 10, 1, events.StageJudged, 10, 1, events.StageDecided, 3, 420)},
			Verdict{Reason: "notifier: no canary decided since 03:08:00 UTC (7 intervals)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Judge(now, every, c.lanes); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestFailURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hc-ping.com/0f3a":  "https://hc-ping.com/0f3a/fail",
		"https://hc-ping.com/0f3a/": "https://hc-ping.com/0f3a/fail",
	} {
		if got := failURL(in); got != want {
			t.Errorf("failURL(%q) = %q, want %q", in, got, want)
		}
	}
}
