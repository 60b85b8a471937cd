package judge

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var t0 = time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)

var (
	facts  = Facts{Box: "mx", BoxName: "Incoming mail", Check: "tcp://mx1.internal:25"}
	policy = Policy{Ask: 2, Quorum: 2, RoundTimeout: time.Minute, RecoverAfter: 2}
)

// run applies results one second apart, described by words: "ok" and
// "fail" are scheduled results from lon1; "a-ok" and "a-fail" answer the
// verification under way (from ams1 and nyc1 in turn). It returns one word
// per result: the state after it, and "+recheckN", "+open", "+resolve",
// "+false" for effects.
func run(p Policy, spec string) (Server, []string, []Effects) {
	var s Server
	var trail []string
	var all []Effects
	answerFrom := []string{"ams1", "nyc1", "sfo1"}
	var hung events.ProbeResult
	for i, w := range strings.Fields(spec) {
		r := &events.ProbeResult{Server: "mx1", Location: "lon1", Started: t0.Add(time.Duration(i) * time.Second), Task: fmt.Sprintf("t%d", i)}
		if w == "hang" {
			// A scheduled check not answered after hang_after; "late-ok"
			// and "late-fail" are its own result at last.
			r.Unanswered, r.Reason, r.Purpose = true, "no answer after 3s", events.PurposeScheduled
			hung = *r
		}
		if a, ok := strings.CutPrefix(w, "late-"); ok {
			w, *r = a, hung
			r.Unanswered, r.Reason, r.LatencyMS = false, "", 9800
		}
		if a, ok := strings.CutPrefix(w, "a-"); ok {
			w = a
			if s.Round != nil && len(s.Round.Locations) > 0 {
				// The answer of the next location asked, to its task.
				j := len(s.Round.Answered) % len(s.Round.Locations)
				r.Correlation, r.Location = s.Round.ID, s.Round.Locations[j]
				r.Task = TaskID(s.Round.ID, r.Location, j)
			}
		}
		r.OK = w == "ok" || w == "warn"
		if !r.OK && !r.Unanswered {
			r.Reason = "connection refused"
		}
		if w == "warn" {
			r.Warning = "certificate expires in 5 days"
		}
		var fx Effects
		s, fx = Apply(s, r, facts, p)
		if fx.Recheck != "" {
			// Where the verifier sends the re-checks.
			for j := range fx.RecheckCount {
				s.Round.Locations = append(s.Round.Locations, answerFrom[j%len(answerFrom)])
			}
		}
		word := string(s.State)
		if fx.Recheck != "" {
			word += fmt.Sprintf("+recheck%d", fx.RecheckCount)
		}
		if fx.Opened != nil {
			word += "+open"
		}
		if fx.Resolved != nil {
			word += "+resolve"
		}
		if fx.FalseAlarm != nil {
			word += "+false"
		}
		if fx.Warned != nil {
			word += "+warn"
		}
		if fx.Unwarned != nil {
			word += "+unwarn"
		}
		trail = append(trail, word)
		all = append(all, fx)
	}
	return s, trail, all
}

func TestStateMachine(t *testing.T) {
	tests := []struct {
		name, results, want string
	}{
		{"first success", "ok ok", "up up"},
		{"a warning is no failure: told once, ended by a check without it", "ok warn warn ok ok", "up up+warn up up+unwarn up"},
		{"a failure leaves the warning as it is", "warn fail a-fail a-fail warn warn ok", "up+warn suspect+recheck2 suspect down+open down up+resolve up+unwarn"},
		{"one failure is only suspect", "ok fail", "up suspect+recheck2"},
		{"both re-checks fail", "ok fail a-fail a-fail", "up suspect+recheck2 suspect down+open"},
		{"a re-check succeeds: false alarm", "ok fail a-ok", "up suspect+recheck2 up+false"},
		{"one fails, one succeeds: quorum out of reach", "ok fail a-fail a-ok", "up suspect+recheck2 suspect up+false"},
		{"scheduled results wait for the verification", "ok fail ok fail a-fail a-fail", "up suspect+recheck2 suspect suspect suspect down+open"},
		{"down stays down without new incidents", "ok fail a-fail a-fail fail fail", "up suspect+recheck2 suspect down+open down down"},
		{"one success is not recovery", "ok fail a-fail a-fail ok", "up suspect+recheck2 suspect down+open down"},
		{"recover_after successes resolve", "ok fail a-fail a-fail ok ok", "up suspect+recheck2 suspect down+open down up+resolve"},
		{"a failure resets the recovery count", "fail a-fail a-fail ok fail ok ok", "suspect+recheck2 suspect down+open down down down up+resolve"},
		{"a second outage is a second incident", "fail a-fail a-fail ok ok fail a-fail a-fail", "suspect+recheck2 suspect down+open down up+resolve suspect+recheck2 suspect down+open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, trail, _ := run(policy, tt.results)
			if got := strings.Join(trail, " "); got != tt.want {
				t.Errorf("%s:\n got %s\nwant %s", tt.results, got, tt.want)
			}
		})
	}
}

func TestQuorumOfThree(t *testing.T) {
	p := Policy{Ask: 3, Quorum: 2, RoundTimeout: time.Minute, RecoverAfter: 2}
	tests := []struct{ results, want string }{
		{"ok fail a-ok a-fail a-fail", "up suspect+recheck3 suspect suspect down+open"},
		{"ok fail a-fail a-ok a-ok", "up suspect+recheck3 suspect suspect up+false"},
		{"ok fail a-ok a-ok", "up suspect+recheck3 suspect up+false"},
	}
	for _, tt := range tests {
		_, trail, _ := run(p, tt.results)
		if got := strings.Join(trail, " "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.results, got, tt.want)
		}
	}
}

func TestUnansweredVerificationTimesOut(t *testing.T) {
	p := policy
	p.RoundTimeout = 2 * time.Second
	// The answers never come; a scheduled result after the timeout decides.
	if _, trail, _ := run(p, "ok fail ok ok ok"); strings.Join(trail, " ") != "up suspect+recheck2 suspect up+false up" {
		t.Errorf("got %v", trail)
	}
	if _, trail, _ := run(p, "ok fail fail fail"); strings.Join(trail, " ") != "up suspect+recheck2 suspect suspect+recheck2" {
		t.Errorf("got %v", trail)
	}
}

// TestNewRoundCountsWhereItStarted: a verification unanswered in time
// starts again from the next failure, seen elsewhere; that location is
// among those the incident says saw the server failing.
func TestNewRoundCountsWhereItStarted(t *testing.T) {
	p := policy
	p.RoundTimeout = 2 * time.Second
	var s Server
	apply := func(r events.ProbeResult) Effects {
		r.Server, r.Task = "mx1", fmt.Sprintf("t%d", r.Started.Unix())
		if !r.OK {
			r.Reason = "connection refused"
		}
		var fx Effects
		s, fx = Apply(s, &r, facts, p)
		return fx
	}
	apply(events.ProbeResult{Location: "nyc1", Started: t0})
	if fx := apply(events.ProbeResult{Location: "ams1", Started: t0.Add(3 * time.Second)}); fx.Recheck == "" {
		t.Fatalf("no new verification after the first went unanswered: %+v", s)
	}
	s.Round.Locations = []string{"lon1", "nyc1"}
	answer := func(i int, at time.Time) Effects {
		loc := s.Round.Locations[i]
		r := events.ProbeResult{Server: "mx1", Location: loc, Correlation: s.Round.ID, Task: TaskID(s.Round.ID, loc, i), Started: at, Reason: "connection refused"}
		var fx Effects
		s, fx = Apply(s, &r, facts, p)
		return fx
	}
	answer(0, t0.Add(4*time.Second))
	fx := answer(1, t0.Add(5*time.Second))
	if fx.Opened == nil {
		t.Fatalf("two failing answers did not confirm: %+v", s)
	}
	if got, want := strings.Join(fx.Opened.Servers[0].Locations, ","), "nyc1,ams1,lon1"; got != want {
		t.Errorf("seen failing from %s, want %s", got, want)
	}
}

// TestUpSinceOutlastsFalseAlarms: "online for" runs from when the server
// came up, through failures that others did not confirm; an outage ends
// it and the recovery starts it again.
func TestUpSinceOutlastsFalseAlarms(t *testing.T) {
	s, trail, _ := run(policy, "ok ok fail a-ok ok")
	if s.State != events.StateUp || !s.UpSince.Equal(t0) || !s.Since.Equal(t0.Add(3*time.Second)) {
		t.Errorf("after a false alarm (%v): up since %v, state since %v; want up since %v", trail, s.UpSince, s.Since, t0)
	}
	if s, _, _ = run(policy, "fail a-ok ok"); !s.UpSince.Equal(t0.Add(time.Second)) {
		t.Errorf("a server first seen failing, then cleared: up since %v, want %v", s.UpSince, t0.Add(time.Second))
	}
	s, trail, _ = run(policy, "ok fail a-fail a-fail")
	if s.State != events.StateDown || !s.UpSince.IsZero() {
		t.Errorf("down (%v), yet up since %v", trail, s.UpSince)
	}
	s, trail, _ = run(policy, "ok fail a-fail a-fail ok ok ok")
	if s.State != events.StateUp || !s.UpSince.Equal(t0.Add(5*time.Second)) {
		t.Errorf("recovered (%v): up since %v, want %v", trail, s.UpSince, t0.Add(5*time.Second))
	}
}

func TestAnswersCountOnce(t *testing.T) {
	var s Server
	s, _ = Apply(s, &events.ProbeResult{Server: "mx1", Location: "lon1", Task: "t0", Started: t0, OK: false, Reason: "x"}, facts, policy)
	s.Round.Locations = []string{"ams1", "nyc1"}
	answer := &events.ProbeResult{Server: "mx1", Location: "ams1", Task: TaskID(s.Round.ID, "ams1", 0), Correlation: s.Round.ID, Started: t0.Add(time.Second), Reason: "x"}
	s, _ = Apply(s, answer, facts, policy)
	again, fx := Apply(s, answer, facts, policy)
	if again.State != events.StateSuspect || fx.Opened != nil || again.Round.Failed != 1 {
		t.Errorf("a redelivered answer counted twice: %+v", again.Round)
	}
	// An answer older than the last result still counts: it was asked for.
	late := *answer
	late.Location, late.Task, late.Started = "nyc1", TaskID(s.Round.ID, "nyc1", 1), t0.Add(-time.Second)
	s, fx = Apply(s, &late, facts, policy)
	if fx.Opened == nil {
		t.Errorf("the second failing answer did not confirm: %+v", s)
	}
}

func TestIncidentLifecycle(t *testing.T) {
	s, _, fx := run(policy, "ok fail a-fail a-fail ok ok")
	opened, resolved := fx[3].Opened, fx[5].Resolved
	if opened == nil || resolved == nil || opened.Incident != resolved.Incident {
		t.Fatalf("opened %v, resolved %v: want the same incident", opened, resolved)
	}
	if !events.ValidToken(opened.Incident) {
		t.Errorf("incident id %q cannot be a subject token", opened.Incident)
	}
	a := opened.Servers[0]
	if got, want := a.Since, t0.Add(time.Second); !got.Equal(want) {
		t.Errorf("failing since %v, want the first failure at %v", got, want)
	}
	if got, want := strings.Join(a.Locations, ","), "lon1,ams1,nyc1"; got != want {
		t.Errorf("seen failing from %s, want %s", got, want)
	}
	if got, want := a.Verification, "confirmed by 2 of 2 re-checks"; got != want {
		t.Errorf("verification %q, want %q", got, want)
	}
	if got, want := opened.Title, "mx1 (Incoming mail) is down"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if got, want := resolved.Duration(), 2*time.Second; got != want {
		t.Errorf("incident lasted %v, want %v", got, want)
	}
	if s.Incident != "" || s.Reason != "" || s.Round != nil {
		t.Errorf("resolved server still holds trouble: %+v", s)
	}
	for i, f := range fx {
		for _, c := range f.Changes {
			if err := events.New(c.ID, "verifier", t0, &c.ServerStateChanged).Validate(); err != nil {
				t.Errorf("result %d: state change is not a valid event: %v", i, err)
			}
		}
	}
	if err := events.New(opened.Incident+"/opened", "verifier", t0, opened).Validate(); err != nil {
		t.Errorf("incident is not a valid event: %v", err)
	}
}

func TestFalseAlarmIsRecorded(t *testing.T) {
	s, _, fx := run(policy, "ok fail a-ok")
	fa := fx[2].FalseAlarm
	if fa == nil || fx[2].FalseAlarmID == "" {
		t.Fatal("no false alarm")
	}
	if fa.Asked != 2 || fa.OK != 1 || fa.Reason != "connection refused" || fa.Locations[0] != "lon1" {
		t.Errorf("false alarm %+v", fa)
	}
	if err := events.New(fx[2].FalseAlarmID, "verifier", t0, fa).Validate(); err != nil {
		t.Errorf("not a valid event: %v", err)
	}
	if s.FalseAlarms != 1 {
		t.Errorf("false alarms counted %d, want 1", s.FalseAlarms)
	}
}

// TestRedeliveryIsHarmless: applying a result again, or an older one, changes
// nothing and produces nothing; applying it to the state before it produces
// the very same ids.
func TestRedeliveryIsHarmless(t *testing.T) {
	var s Server
	first := &events.ProbeResult{Server: "mx1", Location: "lon1", Task: "t0", Started: t0, Reason: "x"}
	s, _ = Apply(s, first, facts, policy)
	s.Round.Locations = []string{"ams1", "nyc1"}
	a1 := &events.ProbeResult{Server: "mx1", Location: "ams1", Task: TaskID(s.Round.ID, "ams1", 0), Correlation: s.Round.ID, Started: t0.Add(time.Second), Reason: "x"}
	a2 := &events.ProbeResult{Server: "mx1", Location: "nyc1", Task: TaskID(s.Round.ID, "nyc1", 1), Correlation: s.Round.ID, Started: t0.Add(2 * time.Second), Reason: "x"}
	s, _ = Apply(s, a1, facts, policy)
	before := s
	after, fx := Apply(s, a2, facts, policy)
	if fx.Opened == nil {
		t.Fatal("not confirmed")
	}
	again, fx2 := Apply(after, a2, facts, policy)
	if fx2.Opened != nil || len(fx2.Changes) != 0 || again.Seq != after.Seq {
		t.Errorf("redelivered answer had effects: %+v", fx2)
	}
	if _, fx3 := Apply(after, first, facts, policy); len(fx3.Changes) != 0 {
		t.Errorf("a stale result changed state: %+v", fx3)
	}
	_, replay := Apply(before, a2, facts, policy)
	if replay.Opened.Incident != fx.Opened.Incident || replay.Changes[0].ID != fx.Changes[0].ID {
		t.Errorf("replay gave ids %s/%s, first time %s/%s", replay.Opened.Incident, replay.Changes[0].ID, fx.Opened.Incident, fx.Changes[0].ID)
	}
}

func TestIDsAreUniquePerOutage(t *testing.T) {
	seen := map[string]bool{}
	_, _, all := run(policy, strings.Repeat("fail a-fail a-fail ok ok fail a-ok ", 30))
	for i, fx := range all {
		ids := []string{fx.Recheck, fx.FalseAlarmID}
		for _, c := range fx.Changes {
			ids = append(ids, c.ID)
		}
		if fx.Opened != nil {
			ids = append(ids, fx.Opened.Incident)
		}
		for _, id := range ids {
			if id != "" && seen[id] {
				t.Fatalf("result %d: id %s used twice", i, id)
			}
			seen[id] = true
		}
	}
	if n := len(seen); n < 250 {
		t.Errorf("only %d distinct ids over 30 outages and 30 false alarms", n)
	}
}

func TestFlappingPagesOnceUntilSettled(t *testing.T) {
	p := policy
	p.FlapChanges, p.FlapWindow, p.FlapSettle = 3, time.Hour, 10*time.Second
	outage := "fail a-fail a-fail ok ok "
	s, trail, all := run(p, outage+outage+outage+strings.Repeat("ok ", 12))
	got := strings.Join(trail, " ")
	want := "suspect+recheck2 suspect down+open down up+resolve " + // first outage: paged and resolved
		"suspect+recheck2 suspect down+open down up " + // second: the fourth change makes it flapping; the incident stays open
		"suspect+recheck2 suspect down down up " + // third: no new incident, nobody paged
		strings.Repeat("up ", 9) + "up+resolve up up" // up for 10s: settled, resolved
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	opened := 0
	var flapped []int
	for i, fx := range all {
		if fx.Opened != nil {
			opened++
		}
		if fx.Flapping {
			flapped = append(flapped, i)
		}
	}
	if opened != 2 || s.Flapping || s.Incident != "" {
		t.Errorf("%d incidents opened, flapping %v, incident %q after settling", opened, s.Flapping, s.Incident)
	}
	// Staff are told once, when it is marked flapping: the fourth change.
	if len(flapped) != 1 || flapped[0] != 9 {
		t.Errorf("told it is flapping after results %v, want once, after result 9", flapped)
	}
}

func TestMaintenance(t *testing.T) {
	// Results 2 to 5 fall in a window: failures there page nobody.
	var s Server
	var trail []string
	opened := 0
	for i, ok := range []bool{true, true, false, false, false, true, true} {
		r := &events.ProbeResult{Server: "mx1", Location: "lon1", Task: fmt.Sprint(i), Started: t0.Add(time.Duration(i) * time.Second), OK: ok}
		if !ok {
			r.Reason = "connection refused"
		}
		f := facts
		if i >= 2 && i <= 5 {
			f.Maintenance = "Kernel upgrade"
		}
		var fx Effects
		s, fx = Apply(s, r, f, policy)
		if fx.Opened != nil || fx.Recheck != "" {
			opened++
		}
		trail = append(trail, string(s.State))
	}
	if got, want := strings.Join(trail, " "), "up up maintenance maintenance maintenance maintenance up"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if opened != 0 {
		t.Errorf("%d verifications or incidents during maintenance", opened)
	}
	// A server already down keeps its incident through a window.
	s, _, _ = run(policy, "ok fail a-fail a-fail")
	f := facts
	f.Maintenance = "Kernel upgrade"
	s2, fx := Apply(s, &events.ProbeResult{Server: "mx1", Location: "lon1", Task: "m", Started: t0.Add(time.Minute), OK: false, Reason: "x"}, f, policy)
	if s2.State != events.StateDown || s2.Incident == "" || len(fx.Changes) != 0 {
		t.Errorf("a down server went into maintenance: %s %q", s2.State, s2.Incident)
	}
}

// TestFlappingAtTheSecondOutage: with the default of two changes, a server
// down, back and down again within the window is flapping as it goes down
// the second time: that incident opens saying so, and nobody is woken for
// it; the third outage joins it.
func TestFlappingAtTheSecondOutage(t *testing.T) {
	p := policy
	p.FlapChanges, p.FlapWindow, p.FlapSettle = 2, time.Hour, 10*time.Second
	outage := "fail a-fail a-fail ok ok "
	_, trail, all := run(p, outage+outage+outage)
	want := "suspect+recheck2 suspect down+open down up+resolve " +
		"suspect+recheck2 suspect down+open down up " +
		"suspect+recheck2 suspect down down up"
	if got := strings.Join(trail, " "); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	var opened []bool
	for _, fx := range all {
		if fx.Opened != nil {
			opened = append(opened, fx.Flapping)
		}
	}
	if len(opened) != 2 || opened[0] || !opened[1] {
		t.Errorf("incidents opened flapping: %v, want [false true]", opened)
	}
}

// TestOnlyAskedAnswersCount: an answer counts only from a location the
// verification asked, naming the very task it sent there. Two forged
// answers from the failing location, or from anywhere with a made-up
// task, confirm nothing; a guessed round id does not match one drawn with
// a nonce.
func TestOnlyAskedAnswersCount(t *testing.T) {
	f := facts
	f.Nonce = "k7q2"
	s, _ := Apply(Server{}, &events.ProbeResult{Server: "mx1", Location: "lon1", Task: "t0", Started: t0, Reason: "x"}, f, policy)
	s.Round.Locations = []string{"ams1", "nyc1"}
	if guessed := fmt.Sprintf("mx1/verify/%d-%d", s.Seq, t0.UnixMilli()); s.Round.ID == guessed {
		t.Fatalf("the round id %q is the one anybody could work out", s.Round.ID)
	}
	forged := []events.ProbeResult{
		{Location: "lon1", Task: TaskID(s.Round.ID, "lon1", 0)}, // the failing location, not asked
		{Location: "lon1", Task: TaskID(s.Round.ID, "lon1", 1)},
		{Location: "ams1", Task: "made-up"},                                                          // asked, another task
		{Location: "nyc1", Task: TaskID(s.Round.ID, "nyc1", 0)},                                      // asked, ams1's task
		{Location: "ams1", Task: TaskID("mx1/verify/1-1", "ams1", 0), Correlation: "mx1/verify/1-1"}, // a guessed round
	}
	for i, r := range forged {
		r.Server, r.Started, r.Reason = "mx1", t0.Add(time.Duration(i+1)*time.Second), "x"
		if r.Correlation == "" {
			r.Correlation = s.Round.ID
		}
		var fx Effects
		s, fx = Apply(s, &r, f, policy)
		if fx.Opened != nil || s.Round == nil || s.Round.Failed != 0 {
			t.Fatalf("forged answer %d (%s, task %s) counted: %+v", i, r.Location, r.Task, s.Round)
		}
	}
}

// TestHangs: a scheduled check still unanswered after hang_after starts
// the verification at once, and the server is confirmed down once that
// check fails too, not a whole timeout after it; a slow server that does
// answer is no outage.
func TestHangs(t *testing.T) {
	tests := []struct{ name, results, want string }{
		{"re-checks fail, then the check", "ok hang a-fail a-fail late-fail", "up suspect+recheck2 suspect suspect down+open"},
		{"the check fails first", "ok hang late-fail a-fail a-fail", "up suspect+recheck2 suspect suspect down+open"},
		{"slow but answering, after the re-checks failed", "ok hang a-fail a-fail late-ok", "up suspect+recheck2 suspect suspect up+false"},
		{"slow but answering", "ok hang late-ok", "up suspect+recheck2 up+false"},
		{"a re-check answers: its late failure was judged already", "ok hang a-ok late-fail", "up suspect+recheck2 up+false up"},
		{"while suspect, an unanswered check is nothing new", "ok fail hang a-fail a-fail", "up suspect+recheck2 suspect suspect down+open"},
		{"while down, nothing", "ok fail a-fail a-fail hang ok ok", "up suspect+recheck2 suspect down+open down down up+resolve"},
		{"never judged up: nothing yet", "hang late-fail", "unknown suspect+recheck2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, trail, fx := run(policy, tt.results)
			if got := strings.Join(trail, " "); got != tt.want {
				t.Errorf("%s:\n got %s\nwant %s", tt.results, got, tt.want)
			}
			for _, f := range fx {
				hung := strings.HasPrefix(tt.results, "ok hang")
				if f.Opened != nil && hung != strings.Contains(f.Opened.Servers[0].Verification, "asked while lon1's check went unanswered") {
					t.Errorf("opened: %+v", f.Opened.Servers[0])
				}
			}
		})
	}
	// Without verification there is nothing to start early.
	p := policy
	p.Quorum = 0
	if _, trail, _ := run(p, "ok hang late-fail"); strings.Join(trail, " ") != "up up down+open" {
		t.Errorf("quorum 0: got %v", trail)
	}
}
