package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/pipeline"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
)

const statusFleet = `
site: {name: Example Hosting}
locations: [lon1, ams1]
roles: {mx: {label: "Incoming mail (MX)"}, web: {label: Web hosting}}
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - {id: web, name: Web hosting, role: web, datacentre: dc1, servers: [{id: web1, check: "https://web1.internal/health"}]}
  - id: mx
    name: Incoming mail
    role: mx
    datacentre: dc1
    servers:
      - {id: mx1, check: "smtp://mx1.internal:25"}
      - {id: mx2, check: "smtp://mx2.internal:25"}
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 25, from: alerts@example.net, tls: none}}
`

var tStatus = time.Date(2026, 11, 21, 2, 14, 0, 0, time.UTC)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	return writeConfigIn(t, t.TempDir(), yaml)
}

// writeConfigIn writes yaml as dir/tocsin.yaml, beside the files it names
// by relative paths, and returns its path.
func writeConfigIn(t *testing.T, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "tocsin.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// register runs a service instance's announcement as Tocsin's services
// make it (admin.Register), ready or waiting for its consumer.
func register(t *testing.T, url, service, location string, ready bool) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	in := admin.Instance{Service: service, Location: location, Version: "1.0.0", Admin: "127.0.0.1:9100", Started: tStatus.Add(-time.Hour)}
	name := service
	if location != "" {
		name += "@" + location
	}
	m := metrics.New()
	if ready {
		m.Expect(name)
		m.Started(name)
	} else {
		m.Expect(name, service)
	}
	svc, err := admin.Register(nc, in, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
}

// seedOutage writes what the services keep while box mx is down: the
// verifier's records, the open incident and its events, failover's actions.
func seedOutage(t *testing.T, b *bus.Bus) {
	t.Helper()
	bustest.Put(t, b, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: tStatus})
	bustest.Put(t, b, events.BucketServers, "mx1", events.ServerRecord{ID: "mx1", State: events.StateDown, Since: tStatus})
	bustest.Put(t, b, events.BucketServers, "mx2", events.ServerRecord{ID: "mx2", State: events.StateDown, Since: tStatus})
	bustest.Put(t, b, events.BucketBoxes, "web", events.BoxRecord{State: events.BoxOperational, Since: tStatus})
	bustest.Put(t, b, events.BucketBoxes, "mx", events.BoxRecord{State: events.BoxDown, Since: tStatus})
	const id = "20261121-ab12cd"
	const fresh = "20261121-zz99yy"
	bustest.Put(t, b, events.BucketIncidents, events.KeyOpenIncidents("dc1"), events.OpenIncidents{Incidents: []events.OpenIncident{
		{ID: id, Boxes: []string{"mx"}, LastAdded: tStatus}, {ID: fresh, Boxes: []string{"web"}, LastAdded: tStatus.Add(20 * time.Minute)}}})
	for _, ev := range []events.Event{
		events.New(fresh+"/opened", "verifier", tStatus, &events.IncidentOpened{Incident: fresh, Opened: tStatus.Add(20 * time.Minute), Title: "web1 (Web hosting) is down",
			Servers: []events.AffectedServer{{Server: "web1", Box: "web", Since: tStatus.Add(20 * time.Minute), BoxState: events.BoxDown}}}),
		events.New(id+"/opened", "verifier", tStatus, &events.IncidentOpened{Incident: id, Opened: tStatus, Title: "mx1 and mx2 (Incoming mail) are down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: tStatus, BoxState: events.BoxDown}, {Server: "mx2", Box: "mx", Since: tStatus, BoxState: events.BoxDown}}}),
		events.New(id+"/acknowledged", "notifier", tStatus, &events.IncidentAcknowledged{Incident: id, By: "Alice", Via: events.AckViaSMS, At: tStatus.Add(3 * time.Minute)}),
		events.New(id+"/escalated/datacentre", "escalator", tStatus, &events.IncidentEscalated{Incident: id, Step: "datacentre", At: tStatus.Add(15 * time.Minute)}),
		events.New("mx1/action/1", "failover", tStatus, &events.ServerAction{Server: "mx1", Box: "mx", Action: events.ActionRemove, Via: "haproxy",
			Target: "haproxy mail/mx1", Outcome: events.OutcomeDone, Attempt: 1, Change: "c1", Incident: id, At: tStatus.Add(time.Minute)}),
		events.New("mx2/action/1", "failover", tStatus, &events.ServerAction{Server: "mx2", Box: "mx", Action: events.ActionRemove, Via: "webhook",
			Target: "webhook pool mail", Outcome: events.OutcomeFailed, Attempt: 3, Error: "404 Not Found", Change: "c2", Incident: id, At: tStatus.Add(time.Minute)}),
	} {
		if err := b.Publish(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func heartbeat(t *testing.T, b *bus.Bus, location string) {
	t.Helper()
	bustest.Put(t, b, events.BucketLocations, location+".i1", events.Heartbeat{Location: location, Instance: "i1", Since: time.Now(), TTLMS: 60_000})
}

func runStatus(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	// An hour after tStatus: the day the records were made.
	return runClocked(context.Background(), cmdStatus, noEnv, tStatus.Add(time.Hour), append(args, "--wait", "500ms")...)
}

// TestStatusDuringOutage: with services missing, a silent location, a box
// down, a lagging consumer and a failed failover action, the report names
// each and the exit code says attention is needed.
func TestStatusDuringOutage(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	for _, s := range [][2]string{{"prober", "lon1"}, {"verifier", ""}, {"notifier", ""}, {"selfwatch", ""}} {
		register(t, srv.URL, s[0], s[1], true)
	}
	register(t, srv.URL, "statuspage", "", false)
	heartbeat(t, b, "lon1")
	seedOutage(t, b)
	// The self-watcher has an alert open about ams1.
	bustest.Put(t, b, events.BucketSelf, events.SelfStateKey, map[string]any{"holder": "sw1", "alerts": map[string]any{
		"location/ams1": map[string]any{"bad": 2, "raised": events.SelfRaised{Alert: "location-ams1-1795227000", Kind: events.SelfLocation,
			What: "ams1", Raised: tStatus.Add(-10 * time.Minute), Title: "prober ams1 has not checked anything since 03:02 UTC",
			Action: "is its host up? see its log"}},
	}})
	ctx := context.Background()
	if _, err := b.JS.CreateOrUpdateConsumer(ctx, events.StreamEvents, jetstream.ConsumerConfig{Durable: "escalator", FilterSubjects: []string{events.SubjectIncidents}, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, statusFleet)

	code, out, errs := runStatus(t, "--nats", srv.URL, "--config", cfg, "--max-lag", "2")
	if code != 1 {
		t.Errorf("exit %d during an outage, want 1; stderr %s", code, errs)
	}
	for _, want := range []string{
		"! service escalator is not running",
		"! service prober@ams1 is not running",
		"! service statuspage is not ready: statuspage: consumer statuspage not set up",
		"! location ams1 is silent",
		"! consumer escalator is 4 messages behind",
		"! box mx is down",
		"! failover could not remove mx2: 404 Not Found",
		"! incident 20261121-zz99yy is not acknowledged",
		"! self alert: prober ams1 has not checked anything since 03:02 UTC",
		"SELF ALERTS", "location  since 02:04 UTC  prober ams1 has not checked anything", "is its host up? see its log",
		"NOT ACKNOWLEDGED",
		"prober@lon1", "ams1", "SILENT",
		"EVENTS/escalator",
		"1 up, 2 down",
		"mx1", "DOWN",
		"20261121-ab12cd  since 02:14 UTC",
		"acked by Alice", "escalated: datacentre",
		"mx2  remove  webhook pool mail  FAILED: 404 Not Found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "FAILED: 404") > strings.Index(out, "mx1  remove  haproxy mail/mx1") {
		t.Errorf("the failed action should come first:\n%s", out)
	}
	for i, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > 80 {
			t.Errorf("line %d is %d wide, more than 80: %q", i+1, n, line)
		}
	}

	code, out, _ = runStatus(t, "--nats", srv.URL, "--config", cfg, "--max-lag", "2", "--json")
	var r statusReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || len(r.Missing) != 2 || len(r.Open) != 2 || r.Open[0].AckedBy != "Alice" || len(r.Actions) != 2 || r.Actions[0].Outcome != events.OutcomeFailed {
		t.Errorf("--json exit %d, report %+v", code, r)
	}
}

// TestStatusAllWell: every expected service answers ready, every location
// beats, nothing is down: exit 0.
func TestStatusAllWell(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	// Two verifiers: one active, one standing by.
	for _, s := range [][2]string{{"prober", "lon1"}, {"prober", "ams1"}, {"verifier", ""}, {"verifier", ""}, {"notifier", ""}, {"escalator", ""}, {"statuspage", ""}, {"selfwatch", ""}} {
		register(t, srv.URL, s[0], s[1], true)
	}
	heartbeat(t, b, "lon1")
	heartbeat(t, b, "ams1")
	bustest.Put(t, b, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: tStatus})
	bustest.Put(t, b, events.BucketBoxes, "web", events.BoxRecord{State: events.BoxOperational, Since: tStatus})
	code, out, errs := runStatus(t, "--nats", srv.URL, "--config", writeConfig(t, statusFleet))
	if code != 0 || !strings.Contains(out, ": all well") {
		t.Errorf("exit %d, want 0:\n%s%s", code, out, errs)
	}
	for _, want := range []string{"escalator", "ready", "lon1", "live (1 prober)", "1 up", "OPEN INCIDENTS\n  none"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	// Every instance answers for itself, the standing-by verifier too.
	if n := strings.Count(out, "ready"); n != 8 || strings.Contains(out, "no answer") {
		t.Errorf("%d instances say ready, want all 8:\n%s", n, out)
	}
}

func TestStatusNoServer(t *testing.T) {
	code, _, errs := runStatus(t, "--nats", "nats://127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "is tocsin running?") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}

func TestNoneActive(t *testing.T) {
	in := []serviceInstance{
		{Service: "verifier", Role: "standby"}, {Service: "verifier", Role: "standby"},
		{Service: "notifier", Role: "standby"}, {Service: "notifier", Role: "active"},
		{Service: "escalator", Role: "active"}, {Service: "escalator"},
		{Service: "prober", Location: "lon1"},
		{Service: "failover", Role: "standby"},
	}
	if got, want := pipeline.NoneActive(in), []string{"failover", "verifier"}; !slices.Equal(got, want) {
		t.Errorf("noneActive = %q, want %q", got, want)
	}
}

// TestPolicyLine: each incident's place in its escalation policy, as the
// on-call reads it under OPEN INCIDENTS.
func TestPolicyLine(t *testing.T) {
	now := time.Date(2026, 11, 21, 3, 20, 0, 0, time.UTC)
	started := now.Add(-16 * time.Minute)
	for _, c := range []struct {
		p         notifier.Position
		pos, next string
	}{
		{notifier.Position{Stage: notifier.StageNotPaged}, "not paged yet", ""},
		{notifier.Position{Stage: notifier.StageNoPolicy}, "no policy", ""},
		{notifier.Position{Stage: notifier.StageEscalating, Severity: events.SeverityOutage, Started: started, Fired: 3, Rungs: 4,
			Next: started.Add(20 * time.Minute), NextWho: []string{"team"}, NextBy: []string{"sms", "email"}},
			"outage, 3 of 4 rungs fired", "03:24 (in 4 min): team by sms+email"},
		{notifier.Position{Stage: notifier.StageEscalating, Severity: events.SeverityDegraded, Fired: 1, Rungs: 2,
			Next: now.Add(-time.Second), NextWho: []string{"oncall"}, NextBy: []string{"voice"}},
			"degraded, 1 of 2 rungs fired", "03:19 (due now): oncall by voice"},
		{notifier.Position{Stage: notifier.StageEscalating, Severity: events.SeverityOutage, Fired: 2},
			"outage, 2 rungs fired", "unknown: give --config"},
		{notifier.Position{Stage: notifier.StageExhausted, Severity: events.SeverityOutage, Fired: 4, Rungs: 4},
			"outage, 4 of 4 rungs fired", "none: every rung fired"},
		{notifier.Position{Stage: notifier.StageAcknowledged, Severity: events.SeverityOutage, Fired: 2, AckedBy: "Bob", AckedAt: now.Add(-5 * time.Minute)},
			"outage, stopped by Bob's ack at 03:15", ""},
	} {
		if pos, next := policyLines(c.p, now); pos != c.pos || next != c.next {
			t.Errorf("%+v:\n got %q, %q\nwant %q, %q", c.p, pos, next, c.pos, c.next)
		}
	}
}
