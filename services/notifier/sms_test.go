package notifier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "tok3nS3cretValue42"
	alicePh   = "+447700900001"
	bobPh     = "+447700900002"
)

// running is a notifier running for real: on JetStream, sending email to an
// SMTP server on loopback and SMS to the Twilio stand-in, serving
// acknowledgements on loopback.
type running struct {
	b      *bus.Bus
	mail   *smtpserver.Server
	twilio *twilioapi.Server
	cfg    *config.Config
	public string
	logs   *logbuf.Buffer
}

func startNotifier(t *testing.T, notify string) *running {
	t.Helper()
	return startNotifierWith(t, `
boxes:
  - {id: mx, name: Incoming mail, role: mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}
staff:
  - {name: Alice, email: alice@example.net, phone: "`+alicePh+`"}
  - {name: Bob, email: bob@example.net, phone: "`+bobPh+`", roles: [web]}
  - {name: Carol, email: carol@example.net}
oncall: {rotation: [Alice], handover: 2026-01-05T09:00:00Z}
`, notify)
}

// startNotifierWith runs a notifier for a fleet and staff of the test's
// own (boxes, staff and oncall sections).
func startNotifierWith(t *testing.T, fleet, notify string) *running {
	t.Helper()
	mail := smtpserver.Start(t, smtpserver.Options{})
	tw := twilioapi.Start(t, testSID, testToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	var y strings.Builder
	fmt.Fprintf(&y, `
site: {name: Example Hosting, status_url: "https://status.example.net"}
locations: [lon1]
roles: {mail: {label: Mail}, web: {label: Web}}
%s
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN, api_url: "%s"}
notify: {public_url: "%s", link_key_env: LINK, %s}
`, fleet, mail.Port, tw.URL, public, notify)
	env := map[string]string{"SID": testSID, "TOKEN": testToken, "LINK": "l1nk-k3y"}
	cfg, err := config.Parse("test.yaml", []byte(y.String()), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	b := bustest.New(t)
	n, err := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(logs, nil))}, WithListener(ln))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := n.Run(ctx); err != nil {
			t.Errorf("notifier: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("notifier log:\n%s", logs)
		}
		for _, secret := range []string{alicePh, bobPh, "alice@example.net", "carol@example.net", testToken, "l1nk-k3y"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the log shows %q", secret)
			}
		}
	})
	return &running{b: b, mail: mail, twilio: tw, cfg: cfg, public: public, logs: logs}
}

func (r *running) publish(t *testing.T, ev events.Event) {
	t.Helper()
	if err := r.b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// tally counts SMS by number and email by address and subject word.
func (r *running) tally() map[string]int {
	got := map[string]int{}
	for _, m := range r.twilio.Messages() {
		got["sms "+m.To]++
	}
	for _, m := range r.mail.Messages() {
		word := strings.Fields(strings.SplitN(m.Subject, "] ", 2)[1])[0]
		got["email "+m.To[0]+" "+word]++
	}
	return got
}

// TestStormPagesOnce: a thousand servers in a hundred boxes going down
// together make one SMS and one email for the person on call, one email
// for the other person routed to them, and nothing for someone routed
// elsewhere; nothing more follows while the storm's updates are told.
func TestStormPagesOnce(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_wait: 6s, group_window: 1m")
	now := time.Now().UTC()
	id := now.Format("20060102") + "-storm1"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "b0s0 (Box 0) is down", Datacentre: "dc1",
		Servers: []events.AffectedServer{{Server: "b0s0", Box: "mx", Check: "tcp://b0s0:25", Since: now, BoxState: events.BoxDegraded}},
	}))
	down := []string{"b0s0"}
	for i := 1; i < 1000; i++ {
		s := fmt.Sprintf("b%ds%d", i/10, i%10)
		down = append(down, s)
		r.publish(t, events.New(fmt.Sprintf("%s/updated/%d", id, i), "verifier", now, &events.IncidentUpdated{
			Incident: id, Seq: int64(i), At: now, Opened: now, Title: fmt.Sprintf("%d servers down in %d boxes at DC One", i+1, i/10+1),
			Added: []events.AffectedServer{{Server: s, Box: "mx", Check: "tcp://" + s + ":25", Since: now, BoxState: events.BoxDown}},
			Down:  down,
		}))
	}
	wait.Within(t, 30*time.Second, "the storm told", func() bool { return len(r.twilio.Messages()) >= 1 && len(r.mail.Messages()) >= 2 })
	time.Sleep(3 * time.Second) // room for any message too many
	want := map[string]int{"sms " + alicePh: 1, "email alice@example.net OUTAGE:": 1, "email carol@example.net OUTAGE:": 1}
	if got := r.tally(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %v, want %v", got, want)
	}
	// The first message tells of the storm as far as it was known when the
	// group wait ended (all of it, unless the machine is slow to read the
	// updates; the rest would follow in one update after group_window).
	sms := r.twilio.Messages()[0]
	if !strings.Contains(sms.Body, " servers down in ") || sms.NumSegments != 1 {
		t.Errorf("SMS %q in %d segments: want the storm in one", sms.Body, sms.NumSegments)
	}
	t.Logf("SMS: %s", sms.Body)

	for _, m := range r.mail.Messages() {
		if !strings.Contains(m.Text, " servers down in ") || !strings.Contains(m.HTML, "<table") {
			t.Errorf("email to %v lacks the storm's size or an HTML part:\n%s", m.To, m.Text)
		}
	}

	// Servers coming back after the first message: each update waits for
	// the digest group_window after it, and they must not hold up what
	// comes after (JetStream gives the notifier 1,000 unacknowledged
	// events at most): a second incident is still told at once. It is
	// part of the storm, still open, and no worse: its email goes, and
	// Alice's phone stays quiet.
	for i := 1; i <= 1000; i++ {
		r.publish(t, events.New(fmt.Sprintf("%s/updated/%d", id, 1000+i), "verifier", now, &events.IncidentUpdated{
			Incident: id, Seq: int64(1000 + i), At: time.Now(), Opened: now, Title: fmt.Sprintf("%d servers down in DC One", 1000-i),
			Recovered: []string{down[i-1]}, Down: down[i:],
		}))
	}
	id2 := now.Format("20060102") + "-after1"
	r.publish(t, events.New(id2+"/opened", "verifier", time.Now(), &events.IncidentOpened{
		Incident: id2, Opened: time.Now().UTC().Add(-time.Minute), Title: "web1 (Web) is down",
		Servers: []events.AffectedServer{{Server: "web1", Box: "mx", Check: "tcp://web1:80", Since: now, BoxState: events.BoxDown}},
	}))
	wait.Within(t, 30*time.Second, "the next incident told", func() bool {
		return slices.ContainsFunc(r.mail.Messages(), func(m smtpserver.Message) bool {
			return m.To[0] == "alice@example.net" && strings.Contains(m.Subject, id2)
		})
	})
	if n := len(r.twilio.Messages()); n != 1 {
		t.Errorf("%d SMS: a storm pages each person once", n)
	}
}

// TestSMSOutage: Twilio answers 503 for a while. Meanwhile the email says
// the SMS could not be delivered; once Twilio is back every SMS goes
// exactly once.
func TestSMSOutage(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "fallback_after: 2s")
	r.twilio.Fail(twilioapi.ServerError(503))
	now := time.Now().UTC()
	id := now.Format("20060102") + "-sms503"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now, BoxState: events.BoxDown}},
	}))
	wait.Within(t, 20*time.Second, "the fallback email", func() bool {
		for _, m := range r.mail.Messages() {
			if m.To[0] == "alice@example.net" && strings.Contains(m.Text, "could not be delivered") {
				return true
			}
		}
		return false
	})
	if n := len(r.twilio.Messages()); n != 0 {
		t.Fatalf("%d SMS accepted during the outage", n)
	}
	r.twilio.Recover()
	wait.Within(t, 40*time.Second, "the SMS after recovery", func() bool { return len(r.twilio.Messages()) >= 1 })
	time.Sleep(2 * time.Second)
	got := r.tally()
	if got["sms "+alicePh] != 1 || got["email alice@example.net OUTAGE:"] != 2 || got["email carol@example.net OUTAGE:"] != 1 {
		t.Errorf("messages %v: want one SMS, the email and its fallback for Alice, one email for Carol", got)
	}
	if a := len(r.twilio.Attempts()); a < 2 {
		t.Errorf("%d attempts at Twilio: the 503 was not retried", a)
	}
}

// TestAcknowledge: a reply to the SMS acknowledges, a forged one is
// refused; the email's link acknowledges on POST only.
func TestAcknowledge(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "repeat_every: 1h")
	now := time.Now().UTC()
	id := now.Format("20060102") + "-ack111"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now}},
	}))
	wait.Within(t, 10*time.Second, "the page", func() bool { return len(r.twilio.Messages()) == 1 && len(r.mail.Messages()) == 2 })
	if body := r.twilio.Messages()[0].Body; !strings.Contains(body, "Reply ACK ack111") {
		t.Errorf("SMS %q does not say how to acknowledge", body)
	}

	// A forged reply: signed with the wrong token.
	form := url.Values{"From": {alicePh}, "To": {"+447700900000"}, "Body": {"ACK"}, "MessageSid": {"SM1"}, "AccountSid": {testSID}}
	req, _ := http.NewRequest("POST", r.public+pathTwilioSMS, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilioapi.Signature("wrongtoken", r.public+pathTwilioSMS, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged webhook answered %d, want 403", resp.StatusCode)
	}

	// The email's link: GET shows a button and acknowledges nothing.
	var link string
	for _, m := range r.mail.Messages() {
		if m.To[0] == "carol@example.net" {
			for _, line := range strings.Split(m.Text, "\n") {
				if strings.HasPrefix(line, "Acknowledge: ") {
					link = strings.TrimPrefix(line, "Acknowledge: ")
				}
			}
		}
	}
	if link == "" {
		t.Fatal("no acknowledgement link in Carol's email")
	}
	resp, err = http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Acknowledge as Carol") {
		t.Errorf("link page %d:\n%s", resp.StatusCode, page)
	}
	if resp, err := http.Get(link + "x"); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a tampered link: %v %v", resp.StatusCode, err)
	}
	if acks(t, r.b) != nil {
		t.Fatal("acknowledged by opening the page")
	}

	// The real reply, signed as Twilio signs it.
	ans, err := r.twilio.SendInbound(context.Background(), r.public+pathTwilioSMS, twilioapi.Inbound{From: alicePh, To: "+447700900000", Body: "ack ack111"})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Status != 200 || !strings.Contains(ans.Body, "Acknowledged ack111. Thank you, Alice.") {
		t.Errorf("reply to the reply: %d %s", ans.Status, ans.Body)
	}
	wait.Within(t, 5*time.Second, "the acknowledgement", func() bool { return acks(t, r.b) != nil })
	if a := acks(t, r.b); a.By != "Alice" || a.Via != events.AckViaSMS {
		t.Errorf("acknowledgement %+v", a)
	}

	// Carol's link, posted, is a second acknowledgement of the same
	// incident: stored once.
	resp, err = http.PostForm(link, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("posting the link: %d", resp.StatusCode)
	}
}

// acks is the first acknowledgement on the stream, or nil.
func acks(t *testing.T, b *bus.Bus) *events.IncidentAcknowledged {
	t.Helper()
	c, err := b.JS.OrderedConsumer(context.Background(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"incident.*.acknowledged"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
	if err != nil {
		return nil
	}
	ev, err := events.Decode(m.Subject(), m.Data())
	if err != nil {
		t.Fatal(err)
	}
	return ev.Data.(*events.IncidentAcknowledged)
}

// TestEmailRefusedSMSSaysSo: the mail server refuses the message for good;
// the person on call gets, besides the page, an SMS saying the email
// failed. Twilio's report of each SMS is recorded.
func TestEmailRefusedSMSSaysSo(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "repeat_every: 1h")
	r.mail.FailWith(550, "mailbox unavailable")
	now := time.Now().UTC()
	id := now.Format("20060102") + "-mail55"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now}},
	}))
	wait.Within(t, 10*time.Second, "two SMS", func() bool { return len(r.twilio.Messages()) == 2 })
	var notes int
	for _, m := range r.twilio.Messages() {
		if strings.HasPrefix(m.Body, "(email failed) DOWN mail55") {
			notes++
		}
	}
	if notes != 1 {
		t.Errorf("SMS %+v: want one saying the email failed", r.twilio.Messages())
	}
	if !strings.Contains(r.logs.String(), "level=ERROR") {
		t.Error("Carol, reachable by email only, was not told: that must be an error in the log")
	}

	sid := r.twilio.Messages()[0].SID
	if ans, err := r.twilio.ReportStatus(context.Background(), sid, twilioapi.Delivered, 0); err != nil || ans.Status != http.StatusNoContent {
		t.Fatalf("status callback: %+v %v", ans, err)
	}
	kv, _ := r.b.KV(context.Background(), events.BucketDeliveries)
	e, err := kv.Get(context.Background(), "sms."+sid)
	if err != nil || !strings.Contains(string(e.Value()), `"status":"delivered"`) {
		t.Errorf("status of %s not recorded: %v", sid, err)
	}
}

// TestFailoverAlert: failover that keeps failing to take a server out of its
// pool pages the person on call and emails the others, once.
func TestFailoverAlert(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "repeat_every: 1h")
	now := time.Now().UTC()
	quiet := &events.ServerAction{Server: "mx1", Box: "mx", Action: events.ActionRemove, Via: "haproxy", Target: "haproxy 127.0.0.1:9999 mail/mx1",
		Outcome: events.OutcomeRetrying, Attempt: 1, Error: "connection refused", FailingSince: now, Change: "mx1/state/4-1", At: now}
	r.publish(t, events.New("mx1/action/1", "failover", now, quiet))
	loud := *quiet
	loud.Attempt, loud.Alert = 3, true
	for range 2 {
		r.publish(t, events.New("mx1/action/3", "failover", now, &loud))
	}
	wait.Within(t, 10*time.Second, "the alert", func() bool { return len(r.twilio.Messages()) == 1 && len(r.mail.Messages()) == 2 })
	time.Sleep(time.Second)
	if n, m := len(r.twilio.Messages()), len(r.mail.Messages()); n != 1 || m != 2 {
		t.Errorf("%d SMS and %d emails, want 1 and 2", n, m)
	}
	if body := r.twilio.Messages()[0].Body; !strings.Contains(body, "could not take mx1 out of its pool") {
		t.Errorf("SMS %q", body)
	}
	for _, m := range r.mail.Messages() {
		if !strings.Contains(m.Subject, "FAILOVER FAILING") || !strings.Contains(m.Text, "connection refused") {
			t.Errorf("email %q:\n%s", m.Subject, m.Text)
		}
	}
}

// notifiedOf is the incidents the notifier has told the escalator staff
// were paged about, from the events stream.
func (r *running) notifiedOf(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, ev := range bustest.Events(t, r.b, events.StreamEvents, events.SubjectIncidents) {
		if d, ok := ev.Data.(*events.IncidentNotified); ok {
			out = append(out, d.Incident)
		}
	}
	return out
}

// TestRefusedSMSIsNoPage: Twilio refuses the person on call's SMS for good
// and notify.fallback gives SMS no stand-in. Their email still goes, but
// nobody was woken: the escalator is not told staff were paged, so neither
// the datacentre nor the public hears of it first. Once an SMS goes, the
// word goes with it.
func TestRefusedSMSIsNoPage(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "fallback: [email]")
	r.twilio.Fail(twilioapi.Refused(21610))
	now := time.Now().UTC()
	open := func(id string) {
		r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
			Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down", Severity: events.SeverityOutage,
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now, BoxState: events.BoxDown}},
		}))
	}
	refused := now.Format("20060102") + "-refused"
	open(refused)
	wait.Within(t, 20*time.Second, "the email to the person on call", func() bool {
		return slices.ContainsFunc(r.mail.Messages(), func(m smtpserver.Message) bool {
			return m.To[0] == "alice@example.net" && strings.Contains(m.Subject, refused)
		})
	})
	wait.Within(t, 20*time.Second, "the opening recorded as sent", func() bool { return r.firstSent(t, refused) })
	if got := r.notifiedOf(t); slices.Contains(got, refused) {
		t.Errorf("staff told paged about %s, whose only page was refused", refused)
	}

	r.twilio.Recover()
	paged := now.Format("20060102") + "-paged"
	open(paged)
	wait.Within(t, 20*time.Second, "the word that staff were paged", func() bool { return slices.Contains(r.notifiedOf(t), paged) })
	if got := r.notifiedOf(t); slices.Contains(got, refused) {
		t.Errorf("staff told paged about %s, whose only page was refused", refused)
	}
}

// firstSent reports whether the notifier has recorded the incident's
// opening message as sent to everyone: after it told the escalator, if it
// did.
func (r *running) firstSent(t *testing.T, id string) bool {
	t.Helper()
	kv, err := r.b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := loadState(context.Background(), kv, id)
	return err == nil && !st.FirstSent.IsZero()
}
