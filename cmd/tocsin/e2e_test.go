package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// process is "tocsin run" with some services, in this process, stoppable
// and startable again as an operator would restart a service.
type process struct {
	t      *testing.T
	args   []string
	cancel context.CancelFunc
	done   chan int
	log    *logbuf.Buffer
	env    func(string) (string, bool) // the environment it reads; testEnv unless set
}

func startProcess(t *testing.T, args ...string) *process {
	return startProcessWith(t, testEnv, args...)
}

// startProcessWith starts tocsin with an environment of the test's own.
func startProcessWith(t *testing.T, env func(string) (string, bool), args ...string) *process {
	if len(args) > 0 && args[0] == "run" && !slices.Contains(args, "--admin-listen") {
		// Processes of a test run side by side: each takes an admin port
		// of its own rather than the default one.
		args = append(args, "--admin-listen", "127.0.0.1:0")
	}
	p := &process{t: t, args: args, log: newSyncBuffer(), env: env}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *process) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan int, 1)
	go func() { p.done <- run(ctx, p.args, io.Discard, p.log, p.env) }()
}

func (p *process) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	if code := <-p.done; code != 0 {
		p.t.Errorf("tocsin %s exited %d:\n%s", strings.Join(p.args, " "), code, p.log.String())
	}
	p.cancel = nil
}

func (p *process) restart() { p.stop(); p.start() }

// newSyncBuffer is a log a running tocsin writes to while the test reads it.
func newSyncBuffer() *logbuf.Buffer { return &logbuf.Buffer{} }

const smtpPassword = "e2e-smtp-pa55"

func testEnv(name string) (string, bool) {
	if name == "TOCSIN_SMTP_PASSWORD" {
		return smtpPassword, true
	}
	return "", false
}

// countBy counts messages by staff address and subject word (DOWN, RESOLVED).
func countBy(msgs []smtpserver.Message) map[string]int {
	n := map[string]int{}
	for _, m := range msgs {
		kind := "other"
		for k, words := range map[string][]string{"DOWN": {"OUTAGE", "DEGRADED"}, "RESOLVED": {"RESOLVED"}} {
			for _, w := range words {
				if strings.Contains(m.Subject, "] "+w+":") {
					kind = k
				}
			}
		}
		for _, to := range m.To {
			n[to+" "+kind]++
		}
	}
	return n
}

var staff = []string{"alice@example.net", "bob@example.net"}

func allHave(kind string, want int) func([]smtpserver.Message) bool {
	return func(msgs []smtpserver.Message) bool {
		n := countBy(msgs)
		for _, s := range staff {
			if n[s+" "+kind] < want {
				return false
			}
		}
		return true
	}
}

// TestOutageEndToEnd follows one real outage from the probe to the inbox:
// a website stops answering, exactly one DOWN email reaches each person
// within a window, it comes back, exactly one RESOLVED email follows,
// threaded under the first. The verifier and the notifier are restarted in
// the middle of both, and neither count changes.
func TestOutageEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	web, err := newLoopbackServer("web1", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Off)
	mail := smtpserver.Start(t, smtpserver.Options{Username: "alerts", Password: smtpPassword, TLS: true, RequireTLS: true})
	nats := bustest.Start(t)

	dir := t.TempDir()
	caFile := filepath.Join(dir, "smtp-ca.pem")
	if err := os.WriteFile(caFile, mail.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := writeConfigIn(t, dir, fmt.Sprintf(`
site: {name: Example Hosting, status_url: https://status.example.net}
checks: {interval: 1s, timeout: 500ms, recover_after: 2}
locations: [lon1]
roles: {web: {label: Web Service, colour: "#27ae60"}}
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - id: web
    name: Web and webmail
    role: web
    datacentre: dc1
    servers: [{id: web1, check: "%s"}]
staff:
  - {name: Alice, email: alice@example.net}
  - {name: Bob, email: bob@example.net}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: "Tocsin <alerts@example.net>", username: alerts, password_env: TOCSIN_SMTP_PASSWORD, tls: starttls, ca_file: smtp-ca.pem}
`, web.Check(), mail.Port))

	common := []string{"run", "--config", cfgFile, "--nats", nats.URL, "--shutdown-timeout", "10s", "--admin-listen", "127.0.0.1:0"}
	probers := startProcess(t, append(common, "--services", "prober")...)
	judges := startProcess(t, append(common, "--services", "verifier,notifier")...)
	defer func() {
		if t.Failed() {
			t.Logf("prober log:\n%s\nverifier and notifier log:\n%s", probers.log.String(), judges.log.String())
		}
	}()
	ctx := context.Background()
	b := nats.Connect(t, nil)
	servers, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 30*time.Second, "the website seen up first", func() bool { return stateOf(t, servers, "web1") == events.StateUp })
	within := func(d time.Duration, cond func([]smtpserver.Message) bool, what string) time.Duration {
		t.Helper()
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if _, err := mail.WaitFor(wctx, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return time.Since(start)
	}

	// The outage. Failure seen within a 1s interval, confirmed by a re-check:
	// a few seconds; 20s allows for a loaded machine.
	web.Off()
	took := within(20*time.Second, allHave("DOWN", 1), "DOWN emails")
	t.Logf("DOWN emails arrived %v after the website stopped", took.Round(100*time.Millisecond))
	if n := countBy(mail.Messages()); n["alice@example.net RESOLVED"]+n["bob@example.net RESOLVED"] > 0 {
		t.Fatalf("resolved before the website came back: %v", n)
	}

	judges.restart()
	caughtUp(t, b) // the restarted judges have taken up the outage

	// The recovery, with a restart while the successes are being counted.
	if err := web.On(); err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 30*time.Second, "a check of the website succeeding", func() bool { return succeeded(t, b, "web1", "lon1") })
	judges.restart()
	took = within(20*time.Second, allHave("RESOLVED", 1), "RESOLVED emails")
	t.Logf("RESOLVED emails arrived %v after the restart during recovery", took.Round(100*time.Millisecond))

	caughtUp(t, b) // and once more, where a duplicate would have shown
	msgs := mail.Messages()
	n := countBy(msgs)
	for _, s := range staff {
		for _, kind := range []string{"DOWN", "RESOLVED"} {
			if n[s+" "+kind] != 1 {
				t.Errorf("%s got %d %s emails, want exactly 1 (all: %v)", s, n[s+" "+kind], kind, n)
			}
		}
	}
	if len(msgs) != 4 {
		t.Errorf("%d emails in all, want 4", len(msgs))
	}

	opened := map[string]string{}
	for _, m := range msgs {
		if !m.TLS || m.AuthUser != "alerts" {
			t.Errorf("email %q sent without STARTTLS and auth (tls %v, user %q)", m.Subject, m.TLS, m.AuthUser)
		}
		if strings.Contains(m.Subject, "] OUTAGE:") {
			opened[m.To[0]] = m.MessageID
			for _, want := range []string{"web1 (Web and webmail) is down", "connection refused", "from lon1", "DC One", "Web Service", "OUTAGE: no server answers in Web and webmail"} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("DOWN email lacks %q:\n%s", want, m.Text)
				}
			}
		}
	}
	for _, m := range msgs {
		if strings.Contains(m.Subject, "RESOLVED:") {
			if m.InReplyTo == "" || m.InReplyTo != opened[m.To[0]] || len(m.References) != 1 || m.References[0] != opened[m.To[0]] {
				t.Errorf("RESOLVED email to %s not threaded under %q: In-Reply-To %q, References %q", m.To[0], opened[m.To[0]], m.InReplyTo, m.References)
			}
		}
	}
	for _, p := range []*process{probers, judges} {
		if out := p.log.String(); strings.Contains(out, smtpPassword) || strings.Contains(out, "alice@example.net") {
			t.Errorf("the log shows a password or an address:\n%s", out)
		}
	}
}

// caughtUp waits until the verifier has judged every probe result stored
// when caughtUp was called and one more, a check made since, and the
// notifier has been given every incident event since: an event that the
// judgement would send twice has reached the notifier by then. (The
// notifier holds an incident's events back for its next step, even once
// resolved, so its consumer is never idle, and a held event that was once
// given again stays counted as redelivered.)
func caughtUp(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JS.Stream(ctx, events.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	consumer := func(stream, name string) *jetstream.ConsumerInfo {
		c, err := b.JS.Consumer(ctx, stream, name)
		if err != nil {
			return nil
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return nil
		}
		return ci
	}
	wait.Within(t, 30*time.Second, "the verifier to judge a check made since", func() bool {
		ci := consumer(events.StreamResults, "verifier")
		return ci != nil && ci.AckFloor.Stream > info.State.LastSeq
	})
	wait.Within(t, 30*time.Second, "the notifier to be given every incident event", func() bool {
		ci := consumer(events.StreamEvents, "notifier")
		return ci != nil && ci.NumPending == 0
	})
}

// succeeded reports whether the latest check of server from location
// succeeded. A success comes in a batch of the location's.
func succeeded(t *testing.T, b *bus.Bus, server, location string) bool {
	t.Helper()
	ctx := context.Background()
	c, err := b.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectProbeResult(server, location), events.SubjectProbeResultBatch(location)}})
	if err != nil {
		t.Fatal(err)
	}
	var last *events.ProbeResult
	for {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			evs, err := events.DecodeResults(m.Subject(), m.Data())
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if r := ev.Data.(*events.ProbeResult); r.Server == server && (last == nil || r.Started.After(last.Started)) {
					last = r
				}
			}
		}
		if n == 0 {
			return last != nil && last.OK
		}
	}
}
