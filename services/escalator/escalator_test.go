package escalator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

var xCreds = xapi.Credentials{ConsumerKey: "ck1", ConsumerSecret: "cs1secret", Token: "tk1", TokenSecret: "ts1secret"}

const fbToken = "pageTOKEN123"

// world is what an escalator talks to: JetStream, a mail server for the
// datacentre, and stand-ins for X and Facebook, all on loopback.
type world struct {
	srv  *bustest.Server
	b    *bus.Bus
	mail *smtpserver.Server
	x    *xapi.Server
	fb   *graphapi.Server
	cfg  *config.Config
	logs *logbuf.Buffer
}

// oneBox is the fleet of most tests: one box of two servers in one
// datacentre.
const oneBox = `datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - {id: mx, name: Incoming mail, role: mx, datacentre: dc1, servers: [{id: mx1, check: "smtp://mx1.internal.example.net:25"}, {id: mx2, check: "tcp://192.0.2.7:25"}]}`

func newWorld(t *testing.T, escalation string) *world {
	t.Helper()
	return newWorldWith(t, escalation, oneBox)
}

func newWorldWith(t *testing.T, escalation, fleet string) *world {
	t.Helper()
	w := &world{mail: smtpserver.Start(t, smtpserver.Options{}), x: xapi.Start(t, xCreds), fb: graphapi.Start(t, "4242", fbToken), logs: &logbuf.Buffer{}}
	env := map[string]string{"CK": xCreds.ConsumerKey, "CS": xCreds.ConsumerSecret, "TK": xCreds.Token, "TS": xCreds.TokenSecret, "FB": fbToken}
	var err error
	w.cfg, err = config.Parse("test.yaml", []byte(fmt.Sprintf(`
site: {name: Example Hosting, status_url: "https://status.example.net"}
locations: [lon1]
roles: {mx: {label: Email}}
%s
staff: [{name: Alice, email: alice@example.net}]
escalation: %s
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alerts@example.net, tls: none}
  x: {consumer_key_env: CK, consumer_secret_env: CS, token_env: TK, token_secret_env: TS, api_url: "%s"}
  facebook: {page_id: "4242", token_env: FB, api_url: "%s"}
`, fleet, escalation, w.mail.Port, w.x.URL, w.fb.URL)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	w.srv = bustest.Start(t)
	w.b = w.srv.Connect(t, nil)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("escalator log:\n%s", w.logs)
		}
		for _, secret := range []string{xCreds.ConsumerSecret, xCreds.TokenSecret, fbToken} {
			if strings.Contains(w.logs.String(), secret) {
				t.Errorf("the log shows %q", secret)
			}
		}
	})
	return w
}

// start runs an escalator until the returned stop is called; stop cuts its
// connection without a goodbye, as a crash would.
func (w *world) start(t *testing.T) (stop func()) {
	t.Helper()
	b := w.srv.Connect(t, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.TakeOver = 300 * time.Millisecond // the next instance takes over from a killed one at once
	e, err := New(w.cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(w.logs, nil))}, WithAckWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			b.NC.Close()
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

func (w *world) publish(t *testing.T, ev events.Event) {
	t.Helper()
	if err := w.b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// outage publishes an incident opened now whose box is down, and the
// notifier's word that the people on call were paged about it: where most
// tests start. name ends the incident's id.
func (w *world) outage(t *testing.T, name string) (id string, now time.Time) {
	t.Helper()
	now = time.Now().UTC()
	id = now.Format("20060102") + "-" + name
	w.publish(t, opened(id, now))
	w.publish(t, paged(id, events.SeverityOutage, now, "mx"))
	return id, now
}

// degradation is outage for an incident in which the box still serves.
func (w *world) degradation(t *testing.T, name string) (id string, now time.Time) {
	t.Helper()
	now = time.Now().UTC()
	id = now.Format("20060102") + "-" + name
	w.publish(t, degraded(id, now))
	w.publish(t, paged(id, events.SeverityDegraded, now))
	return id, now
}

// opened is an incident whose box is down: an outage customers see.
func opened(id string, at time.Time) events.Event {
	return events.New(id+"/opened", "verifier", at, &events.IncidentOpened{
		Incident: id, Opened: at, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "smtp://mx1.internal.example.net:25", Since: at,
			Reason: "connection refused", Locations: []string{"lon1", "ams1"}, BoxState: events.BoxDown}},
	})
}

// degraded is an incident in which mx1 fails while mx2 still answers:
// the box still serves.
func degraded(id string, at time.Time) events.Event {
	return events.New(id+"/opened", "verifier", at, &events.IncidentOpened{
		Incident: id, Opened: at, Title: "mx1 (Incoming mail) is down", Severity: events.SeverityDegraded,
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "smtp://mx1.internal.example.net:25", Since: at, BoxState: events.BoxDegraded, StillUp: []string{"mx2"}}},
	})
}

// boxDown is the update of a degraded incident opened at opened: at down,
// mx2 fails too and the box is down.
func boxDown(id string, opened, down time.Time) events.Event {
	return events.New(id+"/updated/1", "verifier", down, &events.IncidentUpdated{
		Incident: id, Seq: 1, At: down, Opened: opened, Title: "2 servers of Incoming mail are down", Severity: events.SeverityOutage,
		Added: []events.AffectedServer{{Server: "mx2", Box: "mx", Check: "tcp://192.0.2.7:25", Since: down, BoxState: events.BoxDown}},
		Boxes: []events.BoxStatus{{Box: "mx", State: events.BoxDown}}, Down: []string{"mx1", "mx2"},
	})
}

// pagedWorse is the notifier's word that the people on call were paged
// at at that the box is now down.
func pagedWorse(id string, at time.Time) events.Event {
	return events.New(id+"/notified/worse-1", "notifier", at, &events.IncidentNotified{
		Incident: id, Step: "worse-1", At: at, Severity: events.SeverityOutage, DownBoxes: []string{"mx"}, Reached: 1,
	})
}

// paged is the notifier's word that the people on call were paged about
// the incident at its severity: what the escalator waits for before it
// tells anyone else.
func paged(id string, sev events.Severity, at time.Time, down ...string) events.Event {
	return events.New(id+"/notified/opened", "notifier", at, &events.IncidentNotified{
		Incident: id, Step: "opened", At: at, Severity: sev, DownBoxes: down, Reached: 1,
	})
}

// state reads the escalator's state of an incident.
func (w *world) state(t *testing.T, id string) state {
	t.Helper()
	kv, err := w.b.KV(context.Background(), events.BucketEscalations)
	if err != nil {
		t.Fatal(err)
	}
	var st state
	if _, err := bus.GetJSON(context.Background(), kv, id+".state", &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func resolved(id string, at, end time.Time) events.Event {
	return events.New(id+"/resolved", "verifier", end, &events.IncidentResolved{
		Incident: id, Opened: at, Resolved: end, Title: "mx1 (Incoming mail) is down", Servers: []string{"mx1"},
	})
}

func note(id string, seq int64, msg string, at time.Time) events.Event {
	return events.New(fmt.Sprintf("%s/note/%d", id, seq), "tocsin", at, &events.IncidentNote{
		Incident: id, Seq: seq, Status: events.NoteIdentified, Message: msg, By: "Alice", At: at,
	})
}

func banner(t *testing.T, b *bus.Bus) events.Banner {
	t.Helper()
	kv, err := b.KV(context.Background(), events.BucketBanner)
	if err != nil {
		t.Fatal(err)
	}
	var bn events.Banner
	if _, err := bus.GetJSON(context.Background(), kv, events.BannerKey, &bn); err != nil {
		t.Fatal(err)
	}
	return bn
}

// idle waits until the escalator has handled every event on b and holds
// none back for a later step (a held event stays unacknowledged): from
// then on it sends nothing more unless told something new, so what has
// not been sent twice by then never is.
func idle(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	wait.For(t, "the escalator to handle every event and hold none back", func() bool {
		c, err := b.JS.Consumer(ctx, events.StreamEvents, "escalator")
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

// held waits until the escalator has judged the incident and holds an
// event back for its next step.
func (w *world) held(t *testing.T, id string) {
	t.Helper()
	wait.For(t, "the next step of "+id+" held", func() bool { return !w.state(t, id).WakeAt.IsZero() })
}

// TestIncidentGoesPublic: an outage that lasts is emailed to the
// datacentre, then posted to X and Facebook with the banner raised; a staff
// update follows everywhere, threaded; the resolution closes each thread
// once and lowers the banner. Nothing public names a server.
func TestIncidentGoesPublic(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 1s, social_after: 2s}")
	w.start(t)
	id, now := w.outage(t, "public")

	wait.Within(t, 10*time.Second, "the ticket", func() bool { return len(w.mail.Messages()) == 1 })
	ticket := w.mail.Messages()[0]
	if took := time.Since(now); took < time.Second {
		t.Errorf("the datacentre was emailed %s after the incident opened, before datacentre_after", took)
	}
	for _, want := range []string{"Ticket request", id, "Server:        mx1", "Address:       mx1.internal.example.net:25", "from lon1, ams1"} {
		if !strings.Contains(ticket.Subject+ticket.Text, want) {
			t.Errorf("ticket lacks %q:\n%s\n%s", want, ticket.Subject, ticket.Text)
		}
	}
	if ticket.To[0] != "noc@dc1.example" {
		t.Errorf("ticket to %v", ticket.To)
	}
	wait.Within(t, 10*time.Second, "the posts", func() bool { return len(w.x.Posts()) == 1 && len(w.fb.Posts()) == 1 })
	wait.Within(t, 10*time.Second, "the banner", func() bool { return banner(t, w.b).On }) // raised after the posts
	if bn := banner(t, w.b); !bn.On || bn.Link != "https://status.example.net" || !strings.Contains(bn.Message, "Incoming mail") {
		t.Errorf("banner %+v", bn)
	}

	w.publish(t, note(id, 1, "A disk failed on mx1.internal.example.net; it is being replaced.", now.Add(3*time.Second)))
	wait.Within(t, 10*time.Second, "the update", func() bool { return len(w.mail.Messages()) == 2 && len(w.x.Posts()) == 2 && len(w.fb.Comments()) == 1 })
	w.publish(t, resolved(id, now, now.Add(4*time.Second)))
	wait.Within(t, 10*time.Second, "the resolution", func() bool { return len(w.mail.Messages()) == 3 && len(w.x.Posts()) == 3 && len(w.fb.Comments()) == 2 })
	idle(t, w.b)

	mails, posts, comments := w.mail.Messages(), w.x.Posts(), w.fb.Comments()
	if len(mails) != 3 || len(posts) != 3 || len(w.fb.Posts()) != 1 || len(comments) != 2 {
		t.Fatalf("%d emails, %d X posts, %d Facebook posts, %d comments; want 3, 3, 1, 2", len(mails), len(posts), len(w.fb.Posts()), len(comments))
	}
	for _, m := range mails[1:] {
		if m.InReplyTo != ticket.MessageID || !strings.HasPrefix(m.Subject, "Re: ") {
			t.Errorf("follow-up %q not threaded under the ticket %q", m.Subject, ticket.MessageID)
		}
	}
	if !strings.Contains(mails[1].Text, "mx1.internal.example.net") {
		t.Error("the datacentre's update was scrubbed: technicians need the hostname")
	}
	for _, p := range posts[1:] {
		if p.ReplyTo != posts[0].ID {
			t.Errorf("X post %q is not a reply to %s", p.Text, posts[0].ID)
		}
	}
	for _, c := range comments {
		if c.PostID != w.fb.Posts()[0].ID {
			t.Errorf("Facebook comment on %s, want %s", c.PostID, w.fb.Posts()[0].ID)
		}
	}
	if !strings.Contains(posts[2].Text, "resolved") || !strings.Contains(comments[1].Message, "resolved") {
		t.Errorf("the last post and comment do not say it is resolved: %q, %q", posts[2].Text, comments[1].Message)
	}
	public := []string{banner(t, w.b).Message}
	for _, p := range posts {
		public = append(public, p.Text)
	}
	public = append(public, w.fb.Posts()[0].Message)
	for _, c := range comments {
		public = append(public, c.Message)
	}
	for _, text := range public {
		for _, name := range internalNames(w.cfg) {
			if strings.Contains(strings.ToLower(text), strings.ToLower(name)) {
				t.Errorf("public text %q names %q", text, name)
			}
		}
	}
	if bn := banner(t, w.b); bn.On {
		t.Errorf("banner still up after the resolution: %+v", bn)
	}
}

// TestResolvedBeforeSocial: an incident resolved before social_after is
// never posted; the datacentre, already emailed, hears it is over.
func TestResolvedBeforeSocial(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 500ms, social_after: 3s}")
	w.start(t)
	id, now := w.outage(t, "quick1")
	wait.Within(t, 10*time.Second, "the ticket", func() bool { return len(w.mail.Messages()) == 1 })
	w.publish(t, resolved(id, now, now.Add(time.Second)))
	wait.Within(t, 10*time.Second, "the datacentre's resolution", func() bool { return len(w.mail.Messages()) == 2 })
	// The opening event stays held until social_after, when the escalator
	// wakes and must find nothing to post.
	idle(t, w.b)
	if took := time.Since(now); took < 3*time.Second {
		t.Errorf("the escalator went quiet %s after the incident opened, before social_after", took)
	}
	if n, m := len(w.x.Posts()), len(w.fb.Posts()); n+m != 0 {
		t.Errorf("%d X and %d Facebook posts for an incident resolved before social_after", n, m)
	}
	if banner(t, w.b).On {
		t.Error("banner raised")
	}
}

// TestAcknowledgementCancels: with ack_cancels: [datacentre], an incident
// acknowledged in time is not sent to the datacentre; the public is still
// told.
func TestAcknowledgementCancels(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 2s, social_after: 3s, ack_cancels: [datacentre]}")
	w.start(t)
	id, now := w.outage(t, "acked1")
	w.publish(t, events.New(id+"/acknowledged", "notifier", now, &events.IncidentAcknowledged{Incident: id, By: "Alice", Via: "sms", At: now}))
	wait.Within(t, 10*time.Second, "the posts", func() bool { return len(w.x.Posts()) == 1 && len(w.fb.Posts()) == 1 })
	if n := len(w.mail.Messages()); n != 0 {
		t.Errorf("%d emails to the datacentre after an acknowledgement that cancels them", n)
	}
}

// TestDeadlineSurvivesARestart: the escalator dies before a deadline and
// comes back after it; the step happens once, within seconds of the
// restart.
func TestDeadlineSurvivesARestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 3s}")
	stop := w.start(t)
	id, now := w.outage(t, "restrt")
	w.held(t, id)
	stop() // killed with the deadline pending
	// The deadline passes with no escalator running: the time itself is
	// what the test is about, so it is slept, not waited for.
	time.Sleep(time.Until(now.Add(3500 * time.Millisecond)))
	if n := len(w.mail.Messages()); n != 0 {
		t.Fatalf("%d emails while no escalator ran", n)
	}
	restarted := time.Now()
	w.start(t)
	wait.Within(t, 10*time.Second, "the ticket after the restart", func() bool { return len(w.mail.Messages()) == 1 })
	t.Logf("ticket %s after the restart", time.Since(restarted).Round(10*time.Millisecond))
	idle(t, w.b) // nothing left to deliver again after an AckWait
	if n := len(w.mail.Messages()); n != 1 {
		t.Errorf("%d tickets, want exactly one", n)
	}
}

// TestDegradedStaysInternal: while another server of the box answers, the
// datacentre is asked to fix it but the public is not told. When the box
// goes down too, the public's clock starts: its posts go social_after
// later, and not before the people on call were paged about the outage.
func TestDegradedStaysInternal(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 500ms, social_after: 1s}")
	w.start(t)
	id, now := w.degradation(t, "degrad")
	wait.Within(t, 10*time.Second, "the ticket", func() bool { return len(w.mail.Messages()) == 1 })
	if text := w.mail.Messages()[0].Text; !strings.Contains(text, "still answers from other servers") {
		t.Errorf("the ticket does not say the service still answers:\n%s", text)
	}
	if n := len(w.x.Posts()) + len(w.fb.Posts()); n != 0 || banner(t, w.b).On {
		t.Fatalf("%d posts for a box that still serves", n)
	}

	down := time.Now().UTC()
	w.publish(t, boxDown(id, now, down))
	// Past the public's deadline, with the update judged: still nothing,
	// for the people on call have not been paged about the outage.
	wait.Within(t, 10*time.Second, "the public's deadline passed", func() bool {
		st := w.state(t, id)
		return st.OutageSince.Equal(down) && time.Now().After(down.Add(1500*time.Millisecond))
	})
	if n := len(w.x.Posts()) + len(w.fb.Posts()); n != 0 || banner(t, w.b).On {
		t.Fatalf("%d posts before the people on call were paged about the outage", n)
	}
	told := time.Now().UTC()
	w.publish(t, pagedWorse(id, told))
	wait.Within(t, 10*time.Second, "the posts once staff were paged", func() bool { return len(w.x.Posts()) == 1 && len(w.fb.Posts()) == 1 && banner(t, w.b).On })
}

// TestPublicClockFromTheBoxDown: the public's clock runs from when the box
// went down, not from the first server's failure.
func TestPublicClockFromTheBoxDown(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 0s, social_after: 2s}")
	w.start(t)
	id, now := w.degradation(t, "clock1")
	wait.Within(t, 10*time.Second, "the opening judged", func() bool { return !w.state(t, id).ToldAt.IsZero() })
	down := time.Now().UTC()
	w.publish(t, boxDown(id, now, down))
	w.publish(t, pagedWorse(id, down))
	wait.Within(t, 10*time.Second, "the posts", func() bool { return len(w.x.Posts()) == 1 && len(w.fb.Posts()) == 1 })
	if at := w.x.Posts()[0].Received; at.Before(down.Add(2 * time.Second)) {
		t.Errorf("posted %s after the box went down, before social_after (2s)", at.Sub(down))
	}
}

// TestStaffBeforePublic: however long ago the deadlines passed, neither the
// datacentre nor the public hears of an incident the people on call were
// not paged about; the word that they were brings both at once.
func TestStaffBeforePublic(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 200ms, social_after: 400ms}")
	w.start(t)
	now := time.Now().UTC().Add(-time.Hour) // both deadlines long past
	id := time.Now().UTC().Format("20060102") + "-order1"
	w.publish(t, opened(id, now))
	wait.Within(t, 10*time.Second, "the opening judged", func() bool { return !w.state(t, id).Opened.IsZero() })
	if n := len(w.mail.Messages()) + len(w.x.Posts()) + len(w.fb.Posts()); n != 0 {
		t.Fatalf("%d messages out before the people on call were paged", n)
	}
	told := time.Now().UTC()
	w.publish(t, paged(id, events.SeverityOutage, told, "mx"))
	wait.Within(t, 10*time.Second, "the ticket and the posts", func() bool {
		return len(w.mail.Messages()) == 1 && len(w.x.Posts()) == 1 && len(w.fb.Posts()) == 1
	})
	if p := w.x.Posts()[0]; p.Received.Before(told) {
		t.Errorf("posted at %s, before staff were paged at %s", p.Received, told)
	}
}

// TestDeadlineSurvivesAWholeRestart: the JetStream server itself goes down
// with the escalator before a deadline, and both come back after it, as
// when the one box Tocsin runs on reboots. The step happens once.
func TestDeadlineSurvivesAWholeRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{datacentre_after: 3s}")
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	boot := func() (stop func()) {
		ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Open: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := bus.Connect("", ns, "whole", quiet)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Ensure(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		w.b = b
		e, err := New(w.cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(w.logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		return func() {
			cancel()
			<-done
			b.NC.Close()
			ns.Shutdown()
			ns.WaitForShutdown()
		}
	}
	stop := boot()
	id, now := w.outage(t, "reboot")
	w.held(t, id)
	stop() // the whole box goes down with the deadline pending
	// The deadline passes while the whole box is down: the time itself is
	// what the test is about, so it is slept, not waited for.
	time.Sleep(time.Until(now.Add(3500 * time.Millisecond)))
	restarted := time.Now()
	stop = boot()
	defer stop()
	wait.Within(t, 45*time.Second, "the ticket after the reboot", func() bool { return len(w.mail.Messages()) >= 1 })
	t.Logf("ticket %s after the reboot", time.Since(restarted).Round(10*time.Millisecond))
	idle(t, w.b)
	if n := len(w.mail.Messages()); n != 1 {
		t.Errorf("%d tickets, want exactly one", n)
	}
}

// TestRateLimitIsWaitedOut: X answers 429 with the time its limit resets;
// the post goes once, after that time, and Facebook is not held up.
func TestRateLimitIsWaitedOut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, "{social_after: 200ms}")
	reset := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
	w.x.FailNext(1, xapi.RateLimited(reset))
	w.start(t)
	w.outage(t, "rate01")
	wait.Within(t, 20*time.Second, "the post to X", func() bool { return len(w.x.Posts()) == 1 })
	if got := w.x.Posts()[0].Received; got.Before(reset) {
		t.Errorf("posted at %s, before the limit reset at %s", got.Format("15:04:05.000"), reset.Format("15:04:05.000"))
	}
	if fb := w.fb.Posts(); len(fb) != 1 || !fb[0].Received.Before(reset) {
		t.Errorf("Facebook posts %+v: want one, made without waiting for X", fb)
	}
	idle(t, w.b)
	if n := len(w.x.Posts()); n != 1 {
		t.Errorf("%d posts to X, want one", n)
	}
}

// TestStormTicketPerDatacentre: a storm takes a box down in each of three
// datacentres, one incident each, as the verifier groups them. Each
// datacentre gets one ticket, about its own servers only, and no more.
func TestStormTicketPerDatacentre(t *testing.T) {
	t.Parallel()
	w := newWorldWith(t, "{datacentre_after: 200ms, social_after: 0s}", `datacentres:
  dc1: {name: DC One, email: noc@dc1.example}
  dc2: {name: DC Two, email: noc@dc2.example}
  dc3: {name: DC Three, email: noc@dc3.example}
boxes:
  - {id: mx, name: Incoming mail, role: mx, datacentre: dc1, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}
  - {id: web, name: Websites, datacentre: dc2, servers: [{id: web1, check: "tcp://web1.internal:80"}]}
  - {id: db, name: Databases, datacentre: dc3, servers: [{id: db1, check: "tcp://db1.internal:3306"}]}`)
	w.start(t)
	now := time.Now().UTC()
	day := now.Format("20060102")
	for i, b := range [][2]string{{"mx1", "mx"}, {"web1", "web"}, {"db1", "db"}} {
		id := fmt.Sprintf("%s-storm%d", day, i+1)
		w.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
			Incident: id, Opened: now, Title: b[0] + " is down", Severity: events.SeverityOutage, Datacentre: fmt.Sprintf("dc%d", i+1),
			Servers: []events.AffectedServer{{Server: b[0], Box: b[1], Check: "tcp://" + b[0] + ".internal:1", Since: now, BoxState: events.BoxDown}},
		}))
		w.publish(t, paged(id, events.SeverityOutage, now, b[1]))
	}
	wait.Within(t, 10*time.Second, "a ticket for each datacentre", func() bool { return len(w.mail.Messages()) >= 3 })
	idle(t, w.b)
	perDC := map[string][]string{}
	for _, m := range w.mail.Messages() {
		perDC[m.To[0]] = append(perDC[m.To[0]], m.Subject)
	}
	for dc, server := range map[string]string{"noc@dc1.example": "mx1", "noc@dc2.example": "web1", "noc@dc3.example": "db1"} {
		if got := perDC[dc]; len(got) != 1 || !strings.Contains(got[0], server) {
			t.Errorf("%s got %q: want one ticket, about %s", dc, got, server)
		}
	}
	if n := len(w.mail.Messages()); n != 3 {
		t.Errorf("%d datacentre emails for a storm in three datacentres: want 3", n)
	}
}
