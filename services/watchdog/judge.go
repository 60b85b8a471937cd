package watchdog

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Lane is what each stage last recorded of one location's canary, by
// stage; a stage that never recorded anything is missing.
type Lane map[string]events.CanaryStage

// Verdict is what the switch is told.
type Verdict struct {
	// Healthy: a canary of the last interval went through every stage
	// at every location whose scheduler runs. Ping.
	Healthy bool
	// Reason, when not healthy, says which stage stopped and since when.
	// Call <url>/fail with it. Empty while there is nothing to judge yet
	// (every scheduler has just started): tell the switch nothing.
	Reason string
}

// stage is how a stage is named in a reason.
type stage struct{ key, who, verb string }

// after are the stages after the scheduler, in order.
var after = []stage{
	{events.StageProbed, "prober@", "answered"},
	{events.StageJudged, "verifier", "judged"},
	{events.StageDecided, "notifier", "decided"},
}

// Judge says whether the pipeline carried the canary end to end, from
// what every location's stages recorded (lanes, by location).
//
// A location's scheduler runs while it issued a canary in the last two
// intervals; a location whose scheduler stopped altogether is a location
// gone, which its heartbeat and the other locations' checks cover, so it
// fails the switch only when no location's scheduler runs. Where one
// runs, each later stage must have carried the canary of the slot before
// the last issued: a stage gets one interval to do its part.
func Judge(now time.Time, every time.Duration, lanes map[string]Lane) Verdict {
	stale := 2 * every
	var newest time.Time
	stuck := map[string]time.Time{} // who → the newest time it did its part
	missing := map[string]bool{}    // who never did
	verbs := map[string]string{}
	judged := false
	for _, loc := range slices.Sorted(maps.Keys(lanes)) {
		lane := lanes[loc]
		sched, ok := lane[events.StageScheduled]
		if !ok {
			continue
		}
		if sched.At.After(newest) {
			newest = sched.At
		}
		if now.Sub(sched.At) > stale {
			continue // this location's scheduler is gone
		}
		want := sched.Slot - 1
		if want < sched.Since {
			continue // its scheduler has just started: nothing is late yet
		}
		judged = true
		for _, s := range after {
			who := s.who
			if who == "prober@" {
				who += loc
			}
			rec, ok := lane[s.key]
			if ok && rec.Slot >= want {
				continue
			}
			verbs[who] = s.verb
			if !ok {
				missing[who] = true
			} else if rec.At.After(stuck[who]) {
				stuck[who] = rec.At
			}
			break // the stages after it cannot have had it
		}
	}
	switch {
	case newest.IsZero():
		return Verdict{Reason: "scheduler: no canary issued yet"}
	case now.Sub(newest) > stale:
		return Verdict{Reason: "scheduler: no canary issued " + since(now, newest, every)}
	case len(verbs) > 0:
		var rs []string
		for _, who := range slices.Sorted(maps.Keys(verbs)) {
			if missing[who] && stuck[who].IsZero() {
				rs = append(rs, fmt.Sprintf("%s: no canary %s yet", who, verbs[who]))
			} else {
				rs = append(rs, fmt.Sprintf("%s: no canary %s %s", who, verbs[who], since(now, stuck[who], every)))
			}
		}
		return Verdict{Reason: strings.Join(rs, "; ")}
	case !judged:
		return Verdict{} // nothing to judge yet
	}
	return Verdict{Healthy: true}
}

// since is "since 03:12:05 UTC (3 intervals)".
func since(now, t time.Time, every time.Duration) string {
	n := int(now.Sub(t) / every)
	unit := "intervals"
	if n == 1 {
		unit = "interval"
	}
	return fmt.Sprintf("since %s UTC (%d %s)", t.UTC().Format(time.TimeOnly), n, unit)
}
