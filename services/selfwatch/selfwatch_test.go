package selfwatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
	"github.com/tocsin-alarm/tocsin/services/prober"
	"github.com/tocsin-alarm/tocsin/services/selfwatch"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "tok3nS3cretValue42"
	every     = 200 * time.Millisecond
)

// world is the pipeline's parts that self-watching touches, each real
// but Twilio: JetStream, a prober at lon1, the notifier sending through
// the SMTP stand-in, and the watcher.
type world struct {
	t    *testing.T
	cfg  *config.Config
	b    *bus.Bus
	mail *smtpserver.Server
	tw   *twilioapi.Server

	mu          sync.Mutex
	stopProber  context.CancelFunc
	proberEnded chan struct{}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	mail := smtpserver.Start(t, smtpserver.Options{})
	tw := twilioapi.Start(t, testSID, testToken)
	y := fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: web, name: Websites, servers: [{id: web1, check: "tcp://127.0.0.1:1"}]}]
staff: [{name: Alice, email: alice@example.net, phone: "+447700900001"}]
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN, api_url: "%s"}
notify: {fallback_after: 1h}
selfwatch: {provider_after: 1s}
`, mail.Port, tw.URL)
	env := map[string]string{"SID": testSID, "TOKEN": testToken}
	cfg, err := config.Parse("test.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	w := &world{t: t, cfg: cfg, b: b, mail: mail, tw: tw}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	t.Cleanup(func() { cancel(); running.Wait(); w.stopLocation() })
	log := slog.New(slog.NewTextHandler(tlog{t}, nil))
	n, err := notifier.New(cfg, notifier.Deps{Bus: b, Log: log}, notifier.WithAckWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	running.Go(func() { _ = n.Run(ctx) })
	w.startLocation()
	sw := selfwatch.New(cfg, selfwatch.Deps{Bus: b, Log: log}, selfwatch.WithEvery(every))
	running.Go(func() { _ = sw.Run(ctx) })
	return w
}

// startLocation runs a prober at lon1, heartbeating as fast as the test
// looks.
func (w *world) startLocation() {
	w.t.Helper()
	p, err := prober.New(w.cfg, prober.Options{Location: "lon1", Heartbeat: every / 2, HeartbeatTTL: 2 * every}, prober.Deps{Bus: w.b, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	w.mu.Lock()
	w.stopProber, w.proberEnded = cancel, done
	w.mu.Unlock()
}

func (w *world) stopLocation() {
	w.mu.Lock()
	stop, done := w.stopProber, w.proberEnded
	w.stopProber = nil
	w.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// waitLive waits until the watcher has seen lon1 live, with no alert
// open: a prober slower to start than the watcher's first looks raises
// one, which clears once it runs.
func (w *world) waitLive() {
	w.t.Helper()
	wait.Within(w.t, 10*time.Second, "the watcher to see lon1 live", func() bool {
		kv, err := w.b.KV(context.Background(), events.BucketSelf)
		if err != nil {
			return false
		}
		e, err := kv.Get(context.Background(), events.SelfStateKey)
		if err != nil {
			return false
		}
		var rec struct {
			Alerts  map[string]any       `json:"alerts"`
			Heard   map[string]time.Time `json:"heard"`
			Pending []any                `json:"pending"`
		}
		return json.Unmarshal(e.Value(), &rec) == nil && len(rec.Alerts) == 0 && len(rec.Pending) == 0 && time.Since(rec.Heard["lon1"]) < time.Second
	})
}

func (w *world) email(subject string) bool {
	for _, m := range w.mail.Messages() {
		if strings.Contains(m.Subject, subject) {
			return true
		}
	}
	return false
}

func (w *world) sms(body string) bool {
	for _, m := range w.tw.Messages() {
		if strings.Contains(m.Body, body) {
			return true
		}
	}
	return false
}

// A prober location that stops tells staff by email and SMS, naming it,
// within a few looks; coming back clears it. With SMTP refusing for
// longer than provider_after, an SMS says so. Nothing of it is an
// incident.
func TestLocationStoppedAndSMTPRefusing(t *testing.T) {
	w := newWorld(t)
	w.waitLive()

	stopped := time.Now()
	w.stopLocation()
	wait.Within(t, 10*time.Second, "an email naming the stopped location", func() bool { return w.email("prober lon1 has not checked anything") })
	// raise_after looks, and the heartbeat's time to live: well within
	// two of the watcher's intervals and the rest of the test's time.
	if !w.sms("prober lon1") {
		wait.Within(t, 10*time.Second, "an SMS naming the stopped location", func() bool { return w.sms("prober lon1") })
	}
	t.Logf("told %s after the prober stopped", time.Since(stopped).Round(time.Millisecond))
	// What tocsin status shows staff: the alert, open.
	open, err := selfwatch.Open(t.Context(), w.b)
	if err != nil || len(open) != 1 || open[0].Kind != events.SelfLocation || open[0].What != "lon1" {
		t.Errorf("open self alerts: %v %+v, want lon1's", err, open)
	}

	w.startLocation()
	wait.Within(t, 10*time.Second, "the email that it cleared", func() bool { return w.email("SELF-CHECK CLEARED: prober lon1") })
	if open, err := selfwatch.Open(t.Context(), w.b); err != nil || len(open) != 0 {
		t.Errorf("open self alerts once cleared: %v %+v, want none", err, open)
	}

	// SMTP refusing: the next self alert's email fails, and once it has
	// failed longer than provider_after an SMS says so.
	w.mail.FailWith(554, "5.7.1 relaying denied")
	w.stopLocation()
	wait.Within(t, 20*time.Second, "an SMS saying email is failing", func() bool { return w.sms("email by smtp has failed every message") })
	if w.email("email by smtp") {
		t.Error("the alert that email fails was sent by email")
	}

	assertNoIncidents(t, w.b)
}

// Twilio refusing every SMS: an email says so.
func TestTwilioRefusingSaysSoByEmail(t *testing.T) {
	w := newWorld(t)
	w.tw.Fail(twilioapi.Fault{Status: 401, Code: 20003})
	w.waitLive()
	w.stopLocation()
	wait.Within(t, 20*time.Second, "an email saying SMS is failing", func() bool { return w.email("SMS by twilio has failed every message") })
	if len(w.tw.Messages()) != 0 {
		t.Errorf("Twilio refusing took %d messages", len(w.tw.Messages()))
	}
	assertNoIncidents(t, w.b)
}

// assertNoIncidents: self alerts went on self.>, and nothing went where
// the status page, the escalator or failover read.
func assertNoIncidents(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	s, err := b.JS.Stream(ctx, events.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		t.Fatal(err)
	}
	selfs := 0
	for subject, n := range info.State.Subjects {
		if strings.HasPrefix(subject, "self.") {
			selfs += int(n)
			continue
		}
		t.Errorf("%d events on %s: self alerts must stay on self.>", n, subject)
	}
	if selfs == 0 {
		t.Error("no self alert on self.>")
	}
}

type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }
