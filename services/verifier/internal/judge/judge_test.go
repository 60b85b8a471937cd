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
	policy = Policy{ConfirmAfter: 2, RecoverAfter: 2}
)

// seq turns "ok fail fail" into results one second apart, from lon1.
func seq(spec string) []*events.ProbeResult {
	var rs []*events.ProbeResult
	for i, w := range strings.Fields(spec) {
		r := &events.ProbeResult{Server: "mx1", Location: "lon1", Started: t0.Add(time.Duration(i) * time.Second), OK: w == "ok"}
		if !r.OK {
			r.Reason = "connection refused"
		}
		rs = append(rs, r)
	}
	return rs
}

// run applies results and describes what happened, one word per result:
// the state after it, and "+recheck1", "+open", "+resolve" for effects.
func run(rs []*events.ProbeResult) (Server, []string, []Effects) {
	var s Server
	var trail []string
	var all []Effects
	for _, r := range rs {
		var fx Effects
		s, fx = Apply(s, r, facts, policy)
		w := string(s.State)
		if fx.Recheck != "" {
			w += fmt.Sprintf("+recheck%d", fx.RecheckCount)
		}
		if fx.Opened != nil {
			w += "+open"
		}
		if fx.Resolved != nil {
			w += "+resolve"
		}
		trail = append(trail, w)
		all = append(all, fx)
	}
	return s, trail, all
}

func TestStateMachine(t *testing.T) {
	tests := []struct {
		name, results, want string
	}{
		{"first success", "ok ok", "up up"},
		{"one failure is only suspect", "ok fail", "up suspect+recheck1"},
		{"false alarm", "ok fail ok", "up suspect+recheck1 up"},
		{"second failure confirms", "ok fail fail", "up suspect+recheck1 down+open"},
		{"failing from the start", "fail fail", "suspect+recheck1 down+open"},
		{"down stays down without new incidents", "ok fail fail fail fail", "up suspect+recheck1 down+open down down"},
		{"one success is not recovery", "ok fail fail ok", "up suspect+recheck1 down+open down"},
		{"recover_after successes resolve", "ok fail fail ok ok", "up suspect+recheck1 down+open down up+resolve"},
		{"a failure resets the recovery count", "ok fail fail ok fail ok ok", "up suspect+recheck1 down+open down down down up+resolve"},
		{"a second outage is a second incident", "fail fail ok ok fail fail", "suspect+recheck1 down+open down up+resolve suspect+recheck1 down+open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, trail, _ := run(seq(tt.results))
			if got := strings.Join(trail, " "); got != tt.want {
				t.Errorf("%s:\n got %s\nwant %s", tt.results, got, tt.want)
			}
		})
	}
}

func TestIncidentLifecycle(t *testing.T) {
	s, _, fx := run(seq("ok fail fail ok ok"))
	opened, resolved := fx[2].Opened, fx[4].Resolved
	if opened.Incident != resolved.Incident || opened.Incident == "" {
		t.Fatalf("opened %q, resolved %q: want the same incident", opened.Incident, resolved.Incident)
	}
	if !events.ValidToken(opened.Incident) {
		t.Errorf("incident id %q cannot be a subject token", opened.Incident)
	}
	if got, want := opened.Servers[0].Since, t0.Add(time.Second); !got.Equal(want) {
		t.Errorf("failing since %v, want the first failure at %v", got, want)
	}
	if got, want := opened.Title, "mx1 (Incoming mail) is down"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if got, want := resolved.Duration(), 2*time.Second; got != want {
		t.Errorf("incident lasted %v, want %v", got, want)
	}
	if s.Incident != "" || s.Reason != "" {
		t.Errorf("resolved server still holds trouble: %+v", s)
	}
	ev := events.New(fx[2].Changes[0].ID, "verifier", t0, &fx[2].Changes[0].ServerStateChanged)
	if err := ev.Validate(); err != nil {
		t.Errorf("state change is not a valid event: %v", err)
	}
	if err := events.New(opened.Incident+"/opened", "verifier", t0, opened).Validate(); err != nil {
		t.Errorf("incident is not a valid event: %v", err)
	}
}

// TestRedeliveryIsHarmless: applying a result again, or an older one, changes
// nothing and produces nothing; applying it to the state before it produces
// the very same ids.
func TestRedeliveryIsHarmless(t *testing.T) {
	rs := seq("ok fail fail")
	var s Server
	for _, r := range rs[:2] {
		s, _ = Apply(s, r, facts, policy)
	}
	before := s
	after, fx := Apply(s, rs[2], facts, policy)
	again, fx2 := Apply(after, rs[2], facts, policy)
	if fx2.Opened != nil || len(fx2.Changes) != 0 || again.Seq != after.Seq {
		t.Errorf("redelivered result had effects: %+v", fx2)
	}
	if _, fx3 := Apply(after, rs[0], facts, policy); len(fx3.Changes) != 0 {
		t.Errorf("a stale result changed state: %+v", fx3)
	}
	_, replay := Apply(before, rs[2], facts, policy)
	if replay.Opened.Incident != fx.Opened.Incident || replay.Changes[0].ID != fx.Changes[0].ID {
		t.Errorf("replay gave ids %s/%s, first time %s/%s", replay.Opened.Incident, replay.Changes[0].ID, fx.Opened.Incident, fx.Changes[0].ID)
	}
}

func TestIDsAreUniquePerOutage(t *testing.T) {
	seen := map[string]bool{}
	var s Server
	var fx Effects
	for i, r := range seq(strings.Repeat("fail fail ok ok ", 50)) {
		s, fx = Apply(s, r, facts, policy)
		ids := []string{fx.Recheck}
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
	if n := len(seen); n < 200 {
		t.Errorf("only %d distinct ids over 50 outages", n)
	}
}

func TestQuorumOfRechecks(t *testing.T) {
	old := policy
	defer func() { policy = old }()
	policy = Policy{ConfirmAfter: 3, RecoverAfter: 2} // two re-checks must fail too
	tests := []struct{ results, want string }{
		{"ok fail fail fail", "up suspect+recheck2 suspect down+open"},
		{"ok fail fail ok", "up suspect+recheck2 suspect up"},
		{"ok fail ok fail", "up suspect+recheck2 up suspect+recheck2"},
	}
	for _, tt := range tests {
		_, trail, _ := run(seq(tt.results))
		if got := strings.Join(trail, " "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.results, got, tt.want)
		}
	}
}
