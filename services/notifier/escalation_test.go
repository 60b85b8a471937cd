package notifier

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// escalationFleet: Alice on call, Bob her secondary, Carol (no phone) the
// rest of the team; an outage escalates every few seconds.
const escalationFleet = `
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}
staff:
  - {name: Alice, email: alice@example.net, phone: "` + alicePh + `"}
  - {name: Bob, email: bob@example.net, phone: "` + bobPh + `"}
  - {name: Carol, email: carol@example.net}
oncall:
  rotation: [Alice]
  handover: 2026-01-05T09:00:00Z
  secondary: {overrides: [{name: Bob, from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z}]}
`

const escalationNotify = `policies: {outage: [
    {after: 0s, who: [oncall], by: [sms]},
    {after: 2s, who: [oncall], by: [voice]},
    {after: 4s, who: [secondary], by: [sms, voice]},
    {after: 8s, who: [team], by: [sms, email]}]}`

// lastRung is when the last rung of escalationNotify falls due.
const lastRung = 8 * time.Second

func openOutage(t *testing.T, r *running, name string) (string, time.Time) {
	t.Helper()
	now := time.Now().UTC()
	id := now.Format("20060102") + "-" + name
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now, BoxState: events.BoxDown}},
	}))
	return id, now
}

func smsTo(r *running, to string) []twilioapi.Message {
	var out []twilioapi.Message
	for _, m := range r.twilio.Messages() {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

func callsTo(r *running, to string) []twilioapi.Call {
	var out []twilioapi.Call
	for _, c := range r.twilio.Calls() {
		if c.To == to {
			out = append(out, c)
		}
	}
	return out
}

func mailTo(r *running, to string) []smtpserver.Message {
	var out []smtpserver.Message
	for _, m := range r.mail.Messages() {
		if len(m.To) == 1 && m.To[0] == to {
			out = append(out, m)
		}
	}
	return out
}

// TestEscalationUnacknowledged: nobody acknowledges an outage; each rung
// reaches each person by each of its channels once, in turn: the person
// on call by SMS, then by a call, the secondary by both, the team.
func TestEscalationUnacknowledged(t *testing.T) {
	t.Parallel()
	r := startNotifierWith(t, escalationFleet, escalationNotify)
	_, start := openOutage(t, r, "climb")

	wait.Within(t, 20*time.Second, "every rung", func() bool {
		return len(r.twilio.Messages()) == 4 && len(r.twilio.Calls()) == 2 && len(r.mail.Messages()) == 6
	})
	// Everything due has arrived; whatever came twice would have come by
	// now, but a message sent again after a retry could still be on its
	// way: a bounded look past the last rung shows nothing more comes.
	time.Sleep(2 * time.Second)
	if n, c, m := len(r.twilio.Messages()), len(r.twilio.Calls()), len(r.mail.Messages()); n != 4 || c != 2 || m != 6 {
		t.Fatalf("%d SMS, %d calls and %d emails; want 4, 2 and 6", n, c, m)
	}

	alice, bob := smsTo(r, alicePh), smsTo(r, bobPh)
	if len(alice) != 2 || len(bob) != 2 {
		t.Fatalf("SMS to Alice %d, to Bob %d; want 2 each", len(alice), len(bob))
	}
	if !strings.HasPrefix(alice[0].Body, "DOWN ") || !strings.HasPrefix(alice[1].Body, "STILL DOWN ") {
		t.Errorf("SMS to Alice: %q, %q", alice[0].Body, alice[1].Body)
	}
	for _, m := range bob {
		if !strings.HasPrefix(m.Body, "STILL DOWN ") || !strings.Contains(m.Body, "unacknowledged for") {
			t.Errorf("SMS to Bob: %q", m.Body)
		}
	}
	ca, cb := callsTo(r, alicePh), callsTo(r, bobPh)
	if len(ca) != 1 || len(cb) != 1 {
		t.Fatalf("calls to Alice %d, to Bob %d; want 1 each", len(ca), len(cb))
	}
	// Each rung no sooner than its after: the call to Alice after 2s, the
	// secondary after 4s, the team after 8s.
	at := func(d time.Duration) time.Time { return start.Add(d - 100*time.Millisecond) }
	switch {
	case ca[0].Received.Before(at(2 * time.Second)):
		t.Errorf("Alice was called %s after the outage, before her rung", ca[0].Received.Sub(start))
	case cb[0].Received.Before(at(4*time.Second)) || bob[0].Received.Before(at(4*time.Second)):
		t.Errorf("Bob was paged %s after the outage, before his rung", bob[0].Received.Sub(start))
	case bob[1].Received.Before(at(lastRung)) || alice[1].Received.Before(at(lastRung)):
		t.Errorf("the team was paged %s after the outage, before its rung", alice[1].Received.Sub(start))
	}
	for _, to := range []string{"alice@example.net", "bob@example.net", "carol@example.net"} {
		ms := mailTo(r, to)
		if len(ms) != 2 || !strings.Contains(ms[1].Subject, "not acknowledged for") {
			t.Errorf("emails to %s: %d, want the opening and the team's rung", to, len(ms))
		}
	}
}

// TestEscalationAcknowledgedByCall: the secondary presses 1 on the call
// that escalated to them; no later rung fires, and the others told of
// the outage hear who took it on, once: Alice, whose phone rang, by SMS,
// Carol by email.
func TestEscalationAcknowledgedByCall(t *testing.T) {
	t.Parallel()
	r := startNotifierWith(t, escalationFleet, escalationNotify)
	id, start := openOutage(t, r, "press")

	wait.Within(t, 15*time.Second, "the call to the secondary", func() bool { return len(callsTo(r, bobPh)) == 1 })
	// Where tocsin status shows the incident: three rungs of four fired,
	// the team's next, lastRung after the policy started. The rung is
	// recorded once its messages are out, a moment after the call.
	var pos Position
	wait.Within(t, 10*time.Second, "the secondary's rung recorded", func() bool {
		pos = position1(t, r, id)
		return pos.Fired >= 3
	})
	if pos.Stage != StageEscalating || pos.Severity != events.SeverityOutage || pos.Fired != 3 || pos.Rungs != 4 ||
		!pos.Next.Equal(pos.Started.Add(lastRung)) || strings.Join(pos.NextWho, ",") != "team" || strings.Join(pos.NextBy, ",") != "sms,email" {
		t.Errorf("before the keypress: %+v", pos)
	}
	if status, err := r.twilio.Press(t.Context(), callsTo(r, bobPh)[0].SID, "1"); err != nil || status != http.StatusOK {
		t.Fatalf("keypress: %d %v", status, err)
	}
	wait.Within(t, 10*time.Second, "the acknowledgement told", func() bool {
		return len(smsTo(r, alicePh)) == 2 && len(mailTo(r, "carol@example.net")) == 2
	})
	if a := acks(t, r.b); a == nil || a.By != "Bob" {
		t.Fatalf("acknowledgement %+v, want Bob's", a)
	}
	if pos := position1(t, r, id); pos.Stage != StageAcknowledged || pos.AckedBy != "Bob" || pos.Fired != 3 || !pos.Next.IsZero() {
		t.Errorf("after the keypress: %+v", pos)
	}
	// The team's rung would have fired lastRung after the outage: waiting
	// past it, bounded, shows it did not, and that no notice came twice.
	time.Sleep(time.Until(start.Add(lastRung + 2*time.Second)))
	if got := smsTo(r, alicePh); len(got) != 2 || !strings.HasPrefix(got[1].Body, "ACK by Bob at ") {
		t.Errorf("SMS to Alice: %+v, want the opening and one ACK notice", got)
	}
	if got := smsTo(r, bobPh); len(got) != 1 {
		t.Errorf("%d SMS to Bob, want only the secondary's rung", len(got))
	}
	if n := len(r.twilio.Calls()); n != 2 {
		t.Errorf("%d calls, want Alice's and Bob's", n)
	}
	if got := mailTo(r, "carol@example.net"); len(got) != 2 || !strings.Contains(got[1].Subject, "ACK by Bob at ") {
		t.Errorf("emails to Carol: %d, want the opening and one ACK notice", len(got))
	}
	if got := mailTo(r, "bob@example.net"); len(got) != 1 {
		t.Errorf("%d emails to Bob, who acknowledged: want only the opening", len(got))
	}
	if got := mailTo(r, "alice@example.net"); len(got) != 1 {
		t.Errorf("%d emails to Alice: want only the opening, the notice by SMS", len(got))
	}
}

// TestEscalationAfterACrash: a notifier killed after a rung's call went
// out, before the incident's state said so, finishes that rung on the
// redelivery without calling again, and fires the next rung once
// however often the held event comes back.
func TestEscalationAfterACrash(t *testing.T) {
	t.Parallel()
	mail := smtpserver.Start(t, smtpserver.Options{})
	tw := twilioapi.Start(t, testSID, testToken)
	env := map[string]string{"SID": testSID, "TOKEN": testToken, "LINK": "l1nk-k3y"}
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
%s
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN, api_url: "%s"}
notify: {public_url: "http://127.0.0.1:9", link_key_env: LINK, %s}
`, escalationFleet, mail.Port, tw.URL, escalationNotify)), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	b := bustest.New(t)
	n, err := New(cfg, Deps{Bus: b, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	kv, err := b.KV(ctx, events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	id := "20261121-crash"
	ev := events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: now, BoxState: events.BoxDown}},
	})
	handle := func(want time.Duration) {
		t.Helper()
		err := n.handle(ctx, kv, ev)
		if later, ok := bus.IsLater(err); !ok || later != want {
			t.Fatalf("at %s: handle = %v, want to look again in %s", now.Format("15:04:05"), err, want)
		}
	}
	handle(2 * time.Second)
	now = now.Add(2 * time.Second)
	handle(2 * time.Second)
	if c := len(tw.Calls()); c != 1 {
		t.Fatalf("%d calls, want the person on call's", c)
	}

	// The kill: the call went out, the state still has it claimed.
	st, rev, err := loadState(ctx, kv, id)
	if err != nil {
		t.Fatal(err)
	}
	last := st.Policy.Fired[len(st.Policy.Fired)-1]
	st.Policy.Fired = st.Policy.Fired[:len(st.Policy.Fired)-1]
	st.Sending = &sending{Kind: kindEscalation, N: 1, At: now, Seq: st.Seq, Severity: st.Policy.Severity, Steps: []policy.Step{last}}
	if _, err := saveState(ctx, kv, st, rev); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		handle(2 * time.Second)
	}
	now = now.Add(2 * time.Second)
	for range 3 {
		handle(4 * time.Second)
	}
	if c, m := len(tw.Calls()), len(tw.Messages()); c != 2 || m != 2 {
		t.Errorf("%d calls and %d SMS, want one call each to Alice and Bob, and one SMS each", c, m)
	}
	if st, _, _ := loadState(ctx, kv, id); len(st.Policy.Fired) != 3 || st.Sending != nil {
		t.Errorf("rungs settled %+v, claim %+v; want three, none claimed", st.Policy.Fired, st.Sending)
	}
}

// position1 is where incident id stands in its policy, as tocsin status
// reads it.
func position1(t *testing.T, r *running, id string) Position {
	t.Helper()
	ps, err := Positions(t.Context(), r.b, r.cfg, []string{id}, time.Now())
	if err != nil || len(ps) != 1 {
		t.Fatalf("positions: %v, %+v", err, ps)
	}
	return ps[0]
}
