package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var t0 = time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC)

type fixture struct {
	n    *Notifier
	b    *bus.Bus
	mail *smtpserver.Server
	logs *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	mail := smtpserver.Start(t, smtpserver.Options{Username: "alerts", Password: "pw-smtp-0", TLS: true, RequireTLS: true})
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}]
staff:
  - {name: Alice, email: alice@example.net}
  - {name: Bob, email: bob@example.net}
  - {name: Carol, phone: "+447700900003"}
providers:
  smtp: {host: 127.0.0.1, port: 2525, from: alerts@example.net, username: alerts, password_env: PW}
`), func(string) (string, bool) { return "pw-smtp-0", true })
	if err != nil {
		t.Fatal(err)
	}
	// The config names the server; the test's one listens on another port.
	cfg.Providers.SMTP.Port = mail.Port
	cfg.Providers.SMTP.TLS = "starttls"
	logs := &bytes.Buffer{}
	b := bustest.New(t)
	n, err := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(logs, nil))}, WithChannels(trusting(t, cfg, mail)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{n: n, b: b, mail: mail, logs: logs}
}

// trusting is the configured email channel, trusting the test server's
// certificate.
func trusting(t *testing.T, cfg *config.Config, mail *smtpserver.Server) Channel {
	t.Helper()
	dir := t.TempDir()
	path := dir + "/ca.pem"
	if err := os.WriteFile(path, mail.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := *cfg.Providers.SMTP
	s.CAFile = path
	c, err := newEmail(&s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func opened() events.Event {
	return events.New("20261121-abcdef/opened", "verifier", t0, &events.IncidentOpened{
		Incident: "20261121-abcdef", Opened: t0, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: t0, Reason: "connection refused", Locations: []string{"lon1"}}},
	})
}

func (f *fixture) handle(t *testing.T, ev events.Event) error {
	t.Helper()
	kv, err := f.b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	err = f.n.handle(context.Background(), kv, ev)
	if _, later := bus.IsLater(err); later {
		return nil // a timer set: the repeat of an unacknowledged page
	}
	return err
}

func TestRedeliveredEventNeverSendsTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 3 {
		if err := f.handle(t, opened()); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := f.mail.Messages(); len(msgs) != 2 {
		t.Fatalf("%d emails for one event handled three times, want 2 (one per staff member with email)", len(msgs))
	}
	// A crash after the messages went out but before the incident's state
	// said so: the claim is found and finished, and the delivery records
	// keep anyone from being told twice.
	ctx := context.Background()
	kv, _ := f.b.KV(ctx, events.BucketDeliveries)
	st, rev, err := loadState(ctx, kv, "20261121-abcdef")
	if err != nil {
		t.Fatal(err)
	}
	st.Sending = &sending{Kind: kindOpened, At: st.FirstSent}
	st.FirstSent = time.Time{}
	if _, err := saveState(ctx, kv, st, rev); err != nil {
		t.Fatal(err)
	}
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	if msgs := f.mail.Messages(); len(msgs) != 2 {
		t.Errorf("%d emails after finishing a claimed message, want still 2", len(msgs))
	}
	if got := strings.Count(f.logs.String(), "already delivered"); got != 2 {
		t.Errorf("%d duplicates noticed, want 2:\n%s", got, f.logs)
	}
}

func TestTransientFailureRetriesOnlyWhoIsLeft(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mail.FailWith(451, "try again later")
	err := f.handle(t, opened())
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("handle during a 451 = %v, want a retryable error", err)
	}
	f.mail.FailWith(0, "")
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range f.mail.Messages() {
		got[m.To[0]]++
	}
	if got["alice@example.net"] != 1 || got["bob@example.net"] != 1 {
		t.Errorf("emails per person %v, want exactly one each", got)
	}
}

func TestPermanentFailureIsRecordedNotRetried(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mail.FailWith(550, "mailbox unavailable")
	if err := f.handle(t, opened()); err != nil {
		t.Fatalf("a permanent refusal must not hold up the event: %v", err)
	}
	f.mail.FailWith(0, "")
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mail.Messages()); n != 0 {
		t.Errorf("%d emails after a permanent refusal, want 0", n)
	}
	kv, _ := f.b.KV(context.Background(), events.BucketDeliveries)
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		if !strings.Contains(k, ".email.") {
			continue // the incident's own state
		}
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		var d Delivery
		json.Unmarshal(e.Value(), &d)
		if d.Outcome != "failed" || !strings.Contains(d.Reason, "550") {
			t.Errorf("record %s = %+v, want a failure with its reason", k, d)
		}
		n++
	}
	if n != 2 {
		t.Errorf("%d delivery records, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "level=ERROR") {
		t.Errorf("a person not told must be an error in the log:\n%s", f.logs)
	}
}

func TestThreadingAndLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	resolved := events.New("20261121-abcdef/resolved", "verifier", t0.Add(time.Hour), &events.IncidentResolved{
		Incident: "20261121-abcdef", Opened: t0, Resolved: t0.Add(42 * time.Minute), Title: "mx1 (Incoming mail) is down", Servers: []string{"mx1"},
	})
	if err := f.handle(t, resolved); err != nil {
		t.Fatal(err)
	}
	first := map[string]string{}
	resolutions := 0
	for _, m := range f.mail.Messages() {
		switch {
		case opening(m.Subject):
			first[m.To[0]] = m.MessageID
		case strings.Contains(m.Subject, "RESOLVED:"):
			resolutions++
			if m.InReplyTo != first[m.To[0]] || len(m.References) != 1 || m.References[0] != first[m.To[0]] {
				t.Errorf("resolution to %s not threaded under %q: %q %q", m.To[0], first[m.To[0]], m.InReplyTo, m.References)
			}
			if !strings.Contains(m.Text, "Servers down for: 42 minutes") {
				t.Errorf("resolution lacks the duration:\n%s", m.Text)
			}
		}
	}
	if len(first) != 2 || resolutions != 2 {
		t.Errorf("%d opening and %d resolution emails, want 2 of each", len(first), resolutions)
	}
	if first["alice@example.net"] == first["bob@example.net"] {
		t.Error("two people's emails share a Message-ID")
	}
	for _, secret := range []string{"alice@example.net", "bob@example.net", "+447700900003", "pw-smtp-0"} {
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("log shows %q:\n%s", secret, f.logs)
		}
	}
}

// TestLateOpeningIsNotSentAfterResolution: when the opening email was held
// up (a retry) until the resolution went out, it is not sent at all.
func TestLateOpeningIsNotSentAfterResolution(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resolved := events.New("20261121-abcdef/resolved", "verifier", t0.Add(time.Hour), &events.IncidentResolved{
		Incident: "20261121-abcdef", Opened: t0, Resolved: t0.Add(time.Minute), Title: "mx1 (Incoming mail) is down", Servers: []string{"mx1"},
	})
	if err := f.handle(t, resolved); err != nil {
		t.Fatal(err)
	}
	if err := f.handle(t, opened()); err != nil {
		t.Fatal(err)
	}
	for _, m := range f.mail.Messages() {
		if opening(m.Subject) {
			t.Errorf("opening email sent after the resolution: %s", m.Subject)
		}
	}
	if n := len(f.mail.Messages()); n != 2 {
		t.Errorf("%d emails, want the 2 resolutions", n)
	}
}

// opening reports whether an email's subject is an incident's first
// message: it says how bad the incident is.
func opening(subject string) bool {
	return strings.Contains(subject, "] OUTAGE:") || strings.Contains(subject, "] DEGRADED:") || strings.Contains(subject, "] WARNING:")
}
