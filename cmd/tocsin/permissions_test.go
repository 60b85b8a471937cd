package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// refusals is a plain connection as one user that records which subjects
// the server refused it.
type refusals struct {
	nc      *nats.Conn
	refused chan string
}

func connectWatched(t *testing.T, d *deployedNATS, user string) *refusals {
	t.Helper()
	r := &refusals{refused: make(chan string, 100)}
	nc, err := nats.Connect(d.URL,
		nats.UserInfo(user, readFile(t, d.file(user+".password"))),
		nats.RootCAs(d.file("ca.pem")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				r.refused <- err.Error()
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	r.nc = nc
	return r
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// refusalMarker is a subject that no user of deploy/nats/accounts.conf may
// publish to: its refusal marks where the refusals of a publish end.
const refusalMarker = "tocsin.test.refusal-marker"

// publishRefused publishes to subject and reports whether the server
// refused it. The server answers a publish only when it refuses it, in the
// order of the publishes; the client hands the refusals to the error
// handler in that order too. A publish to refusalMarker after it, always
// refused, says when every refusal of subject would have come.
func (r *refusals) publishRefused(t *testing.T, subject string) bool {
	t.Helper()
	for _, s := range []string{subject, refusalMarker} {
		if err := r.nc.Publish(s, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.nc.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	refused := false
	for {
		select {
		case msg := <-r.refused:
			switch {
			case strings.Contains(msg, `"`+subject+`"`):
				refused = true
			case strings.Contains(msg, `"`+refusalMarker+`"`):
				return refused
			}
		case <-timer.C:
			t.Fatalf("no refusal of %s after a publish to %s: the marker is no longer refused to every user", refusalMarker, subject)
			return false
		}
	}
}

func runSetup(t *testing.T, d *deployedNATS, user string) (int, string) {
	t.Helper()
	var out, errs strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, append([]string{"setup", "--nats", d.URL, "--replicas", "1"}, d.auth(user)...), &out, &errs, testEnv)
	return code, out.String() + errs.String()
}

// TestDeployedPermissions runs every service with its own user of
// deploy/nats/accounts.conf, after "tocsin setup" as the admin user: the
// services do their jobs, and the users may do nothing else.
func TestDeployedPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	d := startDeployedNATS(t)
	ctx := context.Background()

	dir := t.TempDir()
	web, err := newLoopbackServer("web1", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Off)
	mail := smtpserver.Start(t, smtpserver.Options{Username: "alerts", Password: smtpPassword, TLS: true, RequireTLS: true})
	if err := os.WriteFile(filepath.Join(dir, "smtp-ca.pem"), mail.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := "http://" + ln.Addr().String()
	ln.Close()
	// The dead man's switch, on loopback: the watchdog pings it once the
	// canary went through every service, each as its own user.
	var pings atomic.Int64
	sw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ping/0f3a" {
			pings.Add(1)
		}
	}))
	t.Cleanup(sw.Close)
	cfgFile := writeConfigIn(t, dir, fmt.Sprintf(`
site: {name: Example Hosting, status_url: https://status.example.net}
checks: {interval: 1s, timeout: 500ms, recover_after: 2}
locations: [lon1]
roles: {web: {label: Web Service, colour: "#27ae60"}}
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - id: web
    name: Websites
    role: web
    datacentre: dc1
    servers: [{id: web1, check: "%s"}]
staff:
  - {name: Alice, email: alice@example.net}
  - {name: Bob, email: bob@example.net}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: "Tocsin <alerts@example.net>", username: alerts, password_env: TOCSIN_SMTP_PASSWORD, tls: starttls, ca_file: smtp-ca.pem}
statuspage: {listen: "%s", admin_token_file: admin.token}
watchdog: {url: "%s/ping/0f3a", every: 1s, timeout: 500ms}
`, web.Check(), mail.Port, strings.TrimPrefix(page, "http://"), sw.URL))
	const adminToken = "staff-0f3c9a"
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runAsUser := func(user, service string, extra ...string) []string {
		args := append([]string{"run", "--config", cfgFile, "--nats", d.URL, "--services", service, "--data", filepath.Join(dir, service), "--shutdown-timeout", "10s"}, d.auth(user)...)
		return append(args, extra...)
	}
	runAs := func(service string, extra ...string) []string { return runAsUser(service, service, extra...) }

	t.Run("a service before setup says to run it", func(t *testing.T) {
		var errs strings.Builder
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if code := run(rctx, runAs("verifier"), io.Discard, &errs, testEnv); code != 1 {
			t.Fatalf("tocsin run as verifier with no streams exited %d, want 1:\n%s", code, errs.String())
		}
		if !strings.Contains(errs.String(), "run \\\"tocsin setup") && !strings.Contains(errs.String(), `run "tocsin setup`) {
			t.Errorf("the error does not say to run tocsin setup:\n%s", errs.String())
		}
	})

	t.Run("setup needs the admin user", func(t *testing.T) {
		code, out := runSetup(t, d, "verifier")
		if code != 1 || !strings.Contains(out, "admin") {
			t.Errorf("setup as verifier exited %d, want 1 with a word on the admin user:\n%s", code, out)
		}
		if code, out := runSetup(t, d, "admin"); code != 0 {
			t.Fatalf("setup as admin exited %d:\n%s", code, out)
		}
		if strings.Contains(out, readFile(t, d.file("verifier.password"))) {
			t.Errorf("setup shows a password:\n%s", out)
		}
	})

	t.Run("prober may not open incidents", func(t *testing.T) {
		r := connectWatched(t, d, "prober-lon1")
		for _, subject := range []string{events.SubjectIncident("inc1", "opened"), "$KV.tocsin-incidents.inc1", "server.web1.changed", "$JS.API.STREAM.DELETE.TOCSIN_EVENTS"} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the prober may publish to %s", subject)
			}
		}
		if r.publishRefused(t, events.SubjectProbeResult("web9", "lon1")) {
			t.Errorf("the prober may not publish a result")
		}
		if !r.publishRefused(t, events.SubjectProbeResult("web9", "ams1")) {
			t.Errorf("the prober at lon1 may publish a result of ams1's")
		}
		if r.publishRefused(t, events.SubjectProbeResultBatch("lon1")) {
			t.Errorf("the prober may not publish a batch of its results")
		}
		if !r.publishRefused(t, events.SubjectProbeResultBatch("ams1")) {
			t.Errorf("the prober at lon1 may publish a batch of ams1's")
		}

		b := d.connect(t, "prober-lon1")
		refusedCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := b.JS.Publish(refusedCtx, events.SubjectIncident("inc1", "opened"), []byte("{}")); err == nil {
			t.Error("the prober published an incident to the stream")
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		kv, err := b.JS.KeyValue(pctx, events.BucketIncidents)
		if err != nil {
			t.Fatal(err)
		}
		refusedCtx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := kv.Put(refusedCtx, "inc1", []byte("{}")); err == nil {
			t.Error("the prober wrote to the incidents bucket")
		}
		admin := d.connect(t, "admin")
		akv, err := admin.JS.KeyValue(pctx, events.BucketIncidents)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := akv.Get(pctx, "inc1"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("the incidents bucket has the prober's write, or cannot be read: %v", err)
		}
		s, err := admin.JS.Stream(pctx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != 0 {
			t.Errorf("the events stream holds %d messages after the prober's attempts, want 0", n)
		}
	})

	t.Run("each location's prober keeps to its location", func(t *testing.T) {
		r := connectWatched(t, d, "prober-lon1")
		for _, subject := range []string{
			"$KV.tocsin-locations.ams1.host-1", // a heartbeat for another location
			"dead.prober-ams1", "dead.prober-ams1-schedule", "dead.verifier",
			"$JS.API.CONSUMER.CREATE.TOCSIN_TASKS.prober-ams1.probe.task.ams1", // another location's consumer
			"$JS.API.CONSUMER.CREATE.TOCSIN_TASKS.prober-lon1.probe.task.ams1", // its own, on another location's tasks
			"$JS.API.CONSUMER.CREATE.TOCSIN_TASKS.prober-lon1",                 // the filter out of sight, in the request
			"$JS.API.CONSUMER.CREATE.TOCSIN_TASKS.prober-lon1.probe.task.>",
			"$JS.API.CONSUMER.MSG.NEXT.TOCSIN_TASKS.prober-ams1", "$JS.ACK.TOCSIN_TASKS.prober-ams1.1.1.1.1.1.1",
			"$JS.API.CONSUMER.DELETE.TOCSIN_TASKS.prober-ams1",
			"$JS.API.CONSUMER.CREATE.TOCSIN_SCHEDULE.prober-ams1-schedule.probe.schedule", // another location's windows
			"$JS.API.CONSUMER.CREATE.TOCSIN_SCHEDULE.prober-lon1-schedule",                // the filter out of sight, in the request
			"$JS.API.CONSUMER.MSG.NEXT.TOCSIN_SCHEDULE.prober-ams1-schedule", "$JS.ACK.TOCSIN_SCHEDULE.prober-ams1-schedule.1.1.1.1.1.1",
			"$JS.API.CONSUMER.DELETE.TOCSIN_SCHEDULE.prober-ams1-schedule",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("prober-lon1 may publish to %s", subject)
			}
		}
		for _, subject := range []string{
			"$KV.tocsin-locations.lon1.host-1", "dead.prober-lon1", "dead.prober-lon1-schedule",
			events.SubjectProbeTask("ams1"), // its scheduler gives tasks to any live location
			events.SubjectProbeSchedule,     // and publishes the windows of checks
		} {
			if r.publishRefused(t, subject) {
				t.Errorf("prober-lon1 may not publish to %s", subject)
			}
		}

		b := d.connect(t, "prober-lon1")
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := b.JS.CreateOrUpdateConsumer(cctx, events.StreamTasks, jetstream.ConsumerConfig{
			Durable: "prober-lon1", FilterSubject: events.SubjectProbeTask("ams1"), AckPolicy: jetstream.AckExplicitPolicy,
		}); err == nil {
			t.Error("prober-lon1 made itself a consumer of ams1's tasks")
		}
		if _, err := b.JS.CreateOrUpdateConsumer(cctx, events.StreamSchedule, jetstream.ConsumerConfig{
			Durable: "prober-ams1-schedule", FilterSubject: events.SubjectProbeSchedule, AckPolicy: jetstream.AckExplicitPolicy,
		}); err == nil {
			t.Error("prober-lon1 made itself ams1's consumer of the windows")
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		kv, err := b.JS.KeyValue(pctx, events.BucketLocations)
		if err != nil {
			t.Fatal(err)
		}
		refusedCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := kv.Put(refusedCtx, "ams1.forged", []byte(`{"location":"ams1","ttl_ms":31536000000}`)); err == nil {
			t.Error("prober-lon1 wrote a heartbeat for ams1")
		}
	})

	t.Run("each stage records its own part of the canary only", func(t *testing.T) {
		for user, own := range map[string]string{
			"prober-lon1": "probed.lon1", "verifier": "judged.lon1", "notifier": "decided.lon1", "watchdog": "",
		} {
			r := connectWatched(t, d, user)
			for _, key := range []string{"scheduled.ams1", "probed.ams1", "judged.lon1", "decided.lon1"} {
				if key == own {
					continue
				}
				if !r.publishRefused(t, "$KV.tocsin-canary."+key) {
					t.Errorf("%s may record the canary's %s", user, key)
				}
			}
			if own != "" && r.publishRefused(t, "$KV.tocsin-canary."+own) {
				t.Errorf("%s may not record the canary's %s", user, own)
			}
		}
		r := connectWatched(t, d, "watchdog")
		for _, subject := range []string{events.SubjectIncident("inc1", "opened"), events.SubjectCanaryJudged("lon1"), events.SubjectProbeTask("lon1"), "$JS.API.STREAM.PURGE.KV_tocsin-canary"} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the watchdog may publish to %s", subject)
			}
		}
		if r := connectWatched(t, d, "prober-lon1"); !r.publishRefused(t, events.SubjectCanaryJudged("lon1")) {
			t.Error("a prober may say the verifier judged a canary")
		}
	})

	t.Run("leader reads, of a service's own buckets only", func(t *testing.T) {
		may := map[string][]string{
			"verifier":  {events.BucketBoxes, events.BucketIncidents},
			"notifier":  {events.BucketDeliveries},
			"escalator": {events.BucketEscalations, events.BucketBanner},
			"failover":  {events.BucketServers, events.BucketFailover},
		}
		buckets := []string{events.BucketBoxes, events.BucketIncidents, events.BucketDeliveries, events.BucketEscalations, events.BucketBanner, events.BucketServers, events.BucketFailover}
		for _, user := range []string{"verifier", "notifier", "escalator", "failover", "prober-lon1", "statuspage"} {
			b, r := d.connect(t, user), connectWatched(t, d, user)
			for _, bucket := range buckets {
				if !slices.Contains(may[user], bucket) {
					if !r.publishRefused(t, "$JS.API.STREAM.MSG.GET.KV_"+bucket) {
						t.Errorf("%s may read %s from its leader", user, bucket)
					}
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				kv, err := b.JS.KeyValue(rctx, bucket)
				if err == nil {
					_, _, err = b.LeaderGet(rctx, kv, "none")
				}
				cancel()
				if !errors.Is(err, jetstream.ErrKeyNotFound) {
					t.Errorf("%s reading %s from its leader: %v", user, bucket, err)
				}
			}
		}
		// A service refused a leader read hears so, with the rule it
		// lacks, rather than wait.
		b := d.connect(t, "prober-lon1")
		kv, err := b.JS.KeyValue(ctx, events.BucketIncidents)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.LeaderGet(ctx, kv, "none"); err == nil || !strings.Contains(err.Error(), "allow it $JS.API.STREAM.MSG.GET.KV_tocsin-incidents") {
			t.Errorf("a refused leader read: %v, want the rule it lacks", err)
		}
	})

	t.Run("verifier may not speak for staff", func(t *testing.T) {
		r := connectWatched(t, d, "verifier")
		for _, step := range []string{"acknowledged", "escalated", "note", "notified"} {
			if !r.publishRefused(t, events.SubjectIncident("inc1", step)) {
				t.Errorf("the verifier may publish incident.inc1.%s", step)
			}
		}
	})

	t.Run("only the notifier says staff were paged", func(t *testing.T) {
		// The escalator emails the datacentre and posts to the public
		// once staff were paged: a forged word would make it go first.
		for _, user := range []string{"escalator", "statuspage", "operator", "verifier"} {
			if r := connectWatched(t, d, user); !r.publishRefused(t, events.SubjectIncident("inc1", "notified")) {
				t.Errorf("%s may publish incident.inc1.notified", user)
			}
		}
	})

	t.Run("nobody else takes a service's messages", func(t *testing.T) {
		for _, user := range []string{"statuspage", "operator"} {
			r := connectWatched(t, d, user)
			for _, durable := range []string{"notifier", "notifier-failover", "escalator", "failover"} {
				if subject := "$JS.API.CONSUMER.MSG.NEXT.TOCSIN_EVENTS." + durable; !r.publishRefused(t, subject) {
					t.Errorf("%s may pull from the %s consumer", user, durable)
				}
			}
		}
		// The operator reads everything, the services' consumers too.
		r := connectWatched(t, d, "operator")
		if subject := "$JS.API.CONSUMER.INFO.TOCSIN_EVENTS.notifier"; r.publishRefused(t, subject) {
			t.Errorf("the operator may not read %s", subject)
		}
	})

	t.Run("domain watcher opens and resolves warnings, and nothing else", func(t *testing.T) {
		r := connectWatched(t, d, "domains")
		for _, subject := range []string{
			events.SubjectIncident("inc1", "acknowledged"), events.SubjectIncident("inc1", "updated"), events.SubjectIncident("inc1", "notified"),
			events.SubjectIncident("inc1", "escalated"), events.SubjectIncident("inc1", "note"),
			events.SubjectProbeResult("x", "lon1"), events.SubjectProbeTask("lon1"), "server.web1.changed", "maintenance.m1.started", "dead.domains",
			"$KV.tocsin-incidents.inc1", "$KV.tocsin-escalations.inc1.state", "$KV.tocsin-banner.banner", "$KV.tocsin-servers.web1",
			"$JS.API.STREAM.DELETE.TOCSIN_EVENTS", "$JS.API.STREAM.PURGE.KV_tocsin-domains", "$JS.API.CONSUMER.MSG.NEXT.TOCSIN_EVENTS.notifier",
			"tocsin.status.verifier",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the domain watcher may publish to %s", subject)
			}
		}
		for _, subject := range []string{events.SubjectIncident("dom1", "opened"), events.SubjectIncident("dom1", "resolved")} {
			if r.publishRefused(t, subject) {
				t.Errorf("the domain watcher may not publish to %s", subject)
			}
		}
		// What it was allowed went into the events stream: out of the
		// way of the services run next.
		admin := d.connect(t, "admin")
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := admin.JS.Stream(actx, events.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(actx, jetstream.WithPurgeSubject("incident.dom1.>")); err != nil {
			t.Fatal(err)
		}

		// Its bucket as it uses it: checked at start, read, written under
		// compare-and-set, listed.
		b := d.connect(t, "domains")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := b.Ensure(pctx, 1); err != nil {
			t.Fatalf("the domain watcher cannot check the streams and buckets: %v", err)
		}
		kv, err := b.JS.KeyValue(pctx, events.BucketDomains)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := kv.Create(pctx, "example_net", []byte("{}"))
		if err != nil {
			t.Fatalf("create a record: %v", err)
		}
		if _, err := kv.Update(pctx, "example_net", []byte(`{"domain":"example.net"}`), rev); err != nil {
			t.Fatalf("update a record: %v", err)
		}
		if _, err := kv.Get(pctx, "example_net"); err != nil {
			t.Fatalf("read a record: %v", err)
		}
		keys, err := kv.ListKeys(pctx)
		if err != nil {
			t.Fatalf("list the records: %v", err)
		}
		n := 0
		for range keys.Keys() {
			n++
		}
		if n != 1 {
			t.Errorf("listed %d records, want 1", n)
		}
		if err := kv.Delete(pctx, "example_net"); err != nil {
			t.Fatalf("delete a record: %v", err)
		}
		ikv, err := b.JS.KeyValue(pctx, events.BucketIncidents)
		if err != nil {
			t.Fatal(err)
		}
		refusedCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := ikv.Get(refusedCtx, "inc1"); err == nil || errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("the domain watcher reads the incidents bucket: %v", err)
		}
	})

	t.Run("push service publishes push reports, and nothing else", func(t *testing.T) {
		r := connectWatched(t, d, "push")
		for _, subject := range []string{
			events.SubjectIncident("inc1", "opened"), events.SubjectIncident("inc1", "resolved"),
			events.SubjectProbeResult("backup-nightly", "lon1"), events.SubjectProbeTask("lon1"), "server.backup-nightly.changed",
			"$KV.tocsin-servers.backup-nightly", "$KV.tocsin-incidents.inc1", "$JS.API.STREAM.PURGE.KV_tocsin-push",
			"$JS.API.CONSUMER.MSG.NEXT.TOCSIN_RESULTS.verifier", "tocsin.status.verifier",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the push service may publish to %s", subject)
			}
		}
		// Nobody else may say a job reported.
		for _, user := range []string{"verifier", "prober-lon1", "statuspage", "staff", "domains"} {
			if !connectWatched(t, d, user).publishRefused(t, events.SubjectPushReport("backup-nightly")) {
				t.Errorf("%s may publish a push report", user)
			}
		}
		// Its bucket as it uses it: checked at start, read, written
		// under compare-and-set; its report stored.
		b := d.connect(t, "push")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := b.Ensure(pctx, 1); err != nil {
			t.Fatalf("the push service cannot check the streams and buckets: %v", err)
		}
		kv, err := b.JS.KeyValue(pctx, events.BucketPush)
		if err != nil {
			t.Fatal(err)
		}
		rev, err := kv.Create(pctx, "backup-nightly", []byte("{}"))
		if err != nil {
			t.Fatalf("create a record: %v", err)
		}
		if _, err := kv.Update(pctx, "backup-nightly", []byte(`{"missed":true}`), rev); err != nil {
			t.Fatalf("update a record: %v", err)
		}
		if _, err := kv.Get(pctx, "backup-nightly"); err != nil {
			t.Fatalf("read a record: %v", err)
		}
		if _, err := kv.Put(pctx, "_alive", []byte(`"2026-11-21T02:00:00Z"`)); err != nil {
			t.Fatalf("write when it looked: %v", err)
		}
		at := time.Now().UTC()
		if err := b.Publish(pctx, events.New("backup-nightly/ok/1", "push", at, &events.PushReport{Server: "backup-nightly", Outcome: events.PushOK, At: at})); err != nil {
			t.Fatalf("publish a report: %v", err)
		}
		admin := d.connect(t, "admin")
		s, err := admin.JS.Stream(pctx, events.StreamResults)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(pctx, jetstream.WithPurgeSubject(events.SubjectPushReports)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("self-watcher raises self alerts, and nothing public", func(t *testing.T) {
		r := connectWatched(t, d, "selfwatch")
		for _, subject := range []string{
			events.SubjectIncident("inc1", "opened"), events.SubjectIncident("inc1", "resolved"), events.SubjectIncident("inc1", "note"),
			"server.web1.changed", "maintenance.m1.started", "$KV.tocsin-banner.banner", "$KV.tocsin-self.provider.sms",
			"$KV.tocsin-incidents.inc1", "$JS.API.CONSUMER.MSG.NEXT.TOCSIN_EVENTS.notifier", "$JS.API.CONSUMER.MSG.NEXT.TOCSIN_EVENTS.notifier-self",
			"$JS.API.STREAM.PURGE.TOCSIN_DEAD",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the self-watcher may publish to %s", subject)
			}
		}
		b := d.connect(t, "selfwatch")
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := b.Ensure(pctx, 1); err != nil {
			t.Fatalf("the self-watcher cannot check the streams and buckets: %v", err)
		}
		kv, err := b.JS.KeyValue(pctx, events.BucketSelf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(pctx, events.SelfStateKey, []byte("{}")); err != nil {
			t.Fatalf("write its state: %v", err)
		}
		if _, err := kv.Get(pctx, events.SelfStateKey); err != nil {
			t.Fatalf("read its state: %v", err)
		}
		n := d.connect(t, "notifier")
		nkv, err := n.JS.KeyValue(pctx, events.BucketSelf)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nkv.Put(pctx, events.SelfProviderKey("sms"), []byte("{}")); err != nil {
			t.Fatalf("the notifier cannot record a provider's health: %v", err)
		}
		if _, err := nkv.Put(pctx, events.SelfStateKey, []byte("{}")); err == nil {
			t.Errorf("the notifier may write the self-watcher's state")
		}
	})

	t.Run("staff updates go through a user of their own", func(t *testing.T) {
		r := connectWatched(t, d, "staff")
		for _, subject := range []string{
			events.SubjectIncident("inc1", "resolved"), events.SubjectIncident("inc1", "acknowledged"), events.SubjectIncident("inc1", "opened"),
			events.SubjectProbeResult("web1", "lon1"), events.SubjectProbeTask("lon1"), events.SubjectMaintenance("m1", "set"),
			"$KV.tocsin-incidents.inc1", "$KV.tocsin-banner.banner", "$JS.API.STREAM.DELETE.TOCSIN_EVENTS", "$JS.API.STREAM.PURGE.KV_tocsin-incidents",
			"$JS.API.CONSUMER.CREATE.TOCSIN_EVENTS.x", "anything.else",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the staff user may publish to %s", subject)
			}
		}
	})

	t.Run("status page only reads", func(t *testing.T) {
		r := connectWatched(t, d, "statuspage")
		for _, subject := range []string{
			events.SubjectIncident("inc1", "note"), "$KV.tocsin-incidents.notes.inc1",
			events.SubjectIncident("inc1", "resolved"), events.SubjectIncident("inc1", "acknowledged"), events.SubjectProbeResult("web1", "lon1"), events.SubjectProbeTask("lon1"),
			events.SubjectMaintenance("m1", "started"), "server.web1.changed", "dead.statuspage",
			"$KV.tocsin-banner.banner", "$KV.tocsin-servers.web1", "$JS.API.STREAM.DELETE.TOCSIN_EVENTS",
			"$JS.API.STREAM.PURGE.TOCSIN_EVENTS", "$JS.API.STREAM.CREATE.X", "$JS.API.CONSUMER.DELETE.TOCSIN_EVENTS.notifier",
			"$JS.API.CONSUMER.CREATE.TOCSIN_EVENTS.escalator", "$JS.ACK.TOCSIN_EVENTS.notifier.1.1.1.1.1",
			"tocsin.status.verifier", "anything.else",
		} {
			if !r.publishRefused(t, subject) {
				t.Errorf("the status page may publish to %s", subject)
			}
		}
	})

	t.Run("each service does its job with its own user", func(t *testing.T) {
		procs := map[string]*process{}
		for _, s := range []string{"verifier", "notifier", "watchdog"} {
			procs[s] = startProcess(t, runAs(s)...)
		}
		procs["statuspage"] = startProcess(t, runAs("statuspage", "--notes-nats-user", "staff", "--notes-nats-password-file", d.file("staff.password"))...)
		// Copies are for tocsin setup to choose: a service asking for
		// another number finds the streams as they are, and goes on.
		for _, s := range []string{"escalator", "failover"} {
			procs[s] = startProcess(t, runAs(s, "--replicas", "3")...)
		}
		procs["prober"] = startProcess(t, runAsUser("prober-lon1", "prober", "--location", "lon1")...)
		defer func() {
			if t.Failed() {
				for s, p := range procs {
					t.Logf("%s log:\n%s", s, p.log.String())
				}
			}
		}()
		webDown := func() bool {
			resp, err := http.Get(page + "/api/v2/incidents/unresolved.json")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return strings.Contains(string(body), `"name":`) && strings.Contains(string(body), "Websites")
		}
		wait.Within(t, 15*time.Second, "the status page to come up", func() bool {
			resp, err := http.Get(page + "/api/v2/summary.json")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		})
		servers, err := d.connect(t, "admin").KV(ctx, events.BucketServers)
		if err != nil {
			t.Fatal(err)
		}
		wait.Within(t, 30*time.Second, "the website seen up first", func() bool { return stateOf(t, servers, "web1") == events.StateUp })
		wait.Within(t, 30*time.Second, "the switch pinged: the canary went through every service", func() bool { return pings.Load() > 0 })
		web.Off()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := mail.WaitFor(wctx, allHave("DOWN", 1)); err != nil {
			t.Fatalf("no DOWN email: %v", err)
		}
		wait.Within(t, 20*time.Second, "the incident on the status page", webDown)
		// Staff post an update through the status page's admin API, which
		// writes with the staff user: the status page's own only reads.
		var unresolved struct {
			Incidents []struct{ ID string } `json:"incidents"`
		}
		if _, body := httpGet(t, page+"/api/v2/incidents/unresolved.json"); json.Unmarshal([]byte(body), &unresolved) != nil || len(unresolved.Incidents) == 0 {
			t.Fatalf("no incident in unresolved.json: %s", body)
		}
		req, _ := http.NewRequest("POST", page+"/api/admin/incidents/"+unresolved.Incidents[0].ID+"/updates",
			strings.NewReader(`{"status": "identified", "message": "A disk failed; it is being replaced.", "by": "Alice"}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Errorf("post an update: %v", err)
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("post an update: %s %s", resp.Status, body)
			}
		}
		wait.Within(t, 20*time.Second, "the staff's update on the status page", func() bool {
			_, body := httpGet(t, page+"/api/v2/incidents/unresolved.json")
			return strings.Contains(body, "A disk failed; it is being replaced.")
		})
		for s, p := range procs {
			out := p.log.String()
			if strings.Contains(out, "refused this user") || strings.Contains(out, "Permissions Violation") {
				t.Errorf("nats refused the %s something it needs:\n%s", s, out)
			}
			if strings.Contains(out, "differs from what this version sets up") {
				t.Errorf("the %s warns of streams that differ only in their copies:\n%s", s, out)
			}
		}
	})

	t.Run("tls", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			flags natsFlags
			url   string
			ok    bool
		}{
			{"the CA and a client certificate", natsFlags{ca: d.file("ca.pem"), cert: d.file("client.pem"), key: d.file("client-key.pem")}, d.URL, true},
			{"the CA alone", natsFlags{ca: d.file("ca.pem")}, d.URL, true},
			{"a wrong CA", natsFlags{ca: d.WrongCA, cert: d.file("client.pem"), key: d.file("client-key.pem")}, d.URL, false},
			{"the system's CAs", natsFlags{}, d.URL, false},
			{"no TLS", natsFlags{}, strings.Replace(d.URL, "tls://", "nats://", 1), false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.flags.user, tc.flags.passwordFile = "operator", d.file("operator.password")
				opts, err := tc.flags.options()
				if err != nil {
					t.Fatal(err)
				}
				nc, err := nats.Connect(tc.url, append(opts, nats.Timeout(5*time.Second))...)
				if err == nil {
					defer nc.Close()
					if !nc.TLSRequired() {
						if _, terr := nc.TLSConnectionState(); terr != nil {
							t.Errorf("connected without TLS: %v", terr)
						}
					}
				}
				if got := err == nil; got != tc.ok {
					t.Errorf("connected: %v (%v), want %v", got, err, tc.ok)
				}
			})
		}
	})
}
