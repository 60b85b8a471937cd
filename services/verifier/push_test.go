package verifier

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func pushConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1, ams1]
checks: {interval: 1m, recover_after: 2, verify: {locations: 1, quorum: 1}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://127.0.0.1:25"}]}
  - {id: backups, name: Mail Backups, servers: [{id: backup-nightly, push: {every: 24h, grace: 1h, token_env: PUSH_TOKEN}}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(name string) (string, bool) { return "0123456789abcdef0123", name == "PUSH_TOKEN" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func publishPush(t *testing.T, b *bus.Bus, server string, n int, outcome, reason string) {
	t.Helper()
	at := clock.Add(time.Duration(n) * time.Second)
	r := &events.PushReport{Server: server, Outcome: outcome, At: at, Reason: reason}
	if err := b.Publish(context.Background(), events.New(fmt.Sprintf("%s/push/%d", server, n), "push", at, r)); err != nil {
		t.Fatal(err)
	}
}

// TestPushServerJudgedWithoutVerification: a push server's failure report
// makes it down at once, no other location asked, its message the
// reason; the next success brings it back after one report, not
// recover_after; a deadline missed is a failure as well. Reports are
// believed for push servers only, and probe results never for them.
func TestPushServerJudgedWithoutVerification(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, pushConfig(t))
	ctx := context.Background()

	publishPush(t, b, "backup-nightly", 1, events.PushOK, "")
	waitState(t, b, "backup-nightly", events.StateUp)
	publishPush(t, b, "backup-nightly", 2, events.PushFailed, "the job reported failure: rsync: disk full")
	waitState(t, b, "backup-nightly", events.StateDown)
	got := incidentEvents(t, b, 1)
	if len(got) != 1 || !matches(got[0], "incident.*.opened") {
		t.Fatalf("incident events %v, want one opened", got)
	}
	opened := lastEvent(t, b, events.SubjectIncidents).Data.(*events.IncidentOpened)
	if a := opened.Servers[0]; a.Reason != "the job reported failure: rsync: disk full" || a.Check != "push" || a.Verification != "" {
		t.Errorf("the incident says %+v", a)
	}
	publishPush(t, b, "backup-nightly", 3, events.PushOK, "")
	waitState(t, b, "backup-nightly", events.StateUp)
	got = incidentEvents(t, b, 2)
	if len(got) != 2 || !matches(got[1], "incident.*.resolved") {
		t.Errorf("incident events %v, want opened then resolved", got)
	}
	publishPush(t, b, "backup-nightly", 4, events.PushMissed, "no report for 25h (every 24h, grace 1h)")
	waitState(t, b, "backup-nightly", events.StateDown)

	// No task was ever sent to check it again.
	if n := streamCount(t, b, events.StreamTasks); n != 0 {
		t.Errorf("%d probe tasks for a push server", n)
	}

	// A probe result for the push server, a push report for a checked one.
	r := &events.ProbeResult{Server: "backup-nightly", Location: "lon1", Check: "tcp://x:1", Task: "forged", Purpose: events.PurposeScheduled, Started: clock.Add(10 * time.Second), OK: true}
	if err := b.Publish(ctx, events.New("forged/result", "prober@lon1", r.Started, r)); err != nil {
		t.Fatal(err)
	}
	publishPush(t, b, "mx1", 11, events.PushFailed, "forged")
	all := deadReasons(t, b, 2)
	for _, want := range []string{`a probe result for "backup-nightly", which reports in`, `a push report for "mx1", which is checked`} {
		if !strings.Contains(all, want) {
			t.Errorf("dead-letter reasons lack %q:\n%s", want, all)
		}
	}
	if s := stateOf(t, b, "backup-nightly"); s != events.StateDown {
		t.Errorf("after the forged result the push server is %s, want still down", s)
	}
}

func streamCount(t *testing.T, b *bus.Bus, stream string) uint64 {
	t.Helper()
	s, err := b.JS.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func lastEvent(t *testing.T, b *bus.Bus, subject string) events.Event {
	t.Helper()
	s, err := b.JS.Stream(context.Background(), events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Decode(m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func stateOf(t *testing.T, b *bus.Bus, server string) events.ServerState {
	t.Helper()
	kv, err := b.KV(context.Background(), events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if _, err := bus.GetJSON(context.Background(), kv, server, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.State
}
