package clustertest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Alice is on call, Bob her secondary, Carol the rest of the team, by
// email only.
const (
	bobPhone    = "+447700900002"
	carolEmail  = "carol@example.net"
	escalPeople = "staff:\n  - {name: Alice, email: " + aliceEmail + ", phone: \"" + alicePhone + "\"}\n" +
		"  - {name: Bob, email: " + bobEmail + ", phone: \"" + bobPhone + "\"}\n  - {name: Carol, email: " + carolEmail + "}\n" +
		"oncall:\n  rotation: [Alice]\n  handover: 2026-01-05T09:00:00Z\n" +
		"  secondary: {overrides: [{name: Bob, from: 2026-01-01T00:00:00Z, until: 2036-01-01T00:00:00Z}]}\n"
	rungGap = 10 * time.Second
)

// TestEscalationSurvivesKills: nobody acknowledges an outage, and the
// notifier process is killed with SIGKILL between every two rungs of the
// policy and started again. Each rung still reaches each person by each of
// its channels exactly once, and no later than the redelivery wait after
// it fell due.
func TestEscalationSurvivesKills(t *testing.T) {
	build(t)
	const ackWait = 3 * time.Second
	f := newFleet(t, 1, 1, []string{"dc01"})
	h := newHarness(t, f, settings{interval: "1s", timeout: "500ms", groupWindow: "2m", ackWait: ackWait.String(),
		people: escalPeople,
		notify: fmt.Sprintf(`group_window: 2s, update_every: 5s, repeat_every: 1h, public_url: "http://127.0.0.1:9",
  link_key_env: TOCSIN_LINK_KEY, policies: {outage: [{after: 0s, who: [oncall], by: [sms]},
    {after: %[1]s, who: [oncall], by: [voice]}, {after: %[2]s, who: [secondary], by: [sms]},
    {after: %[3]s, who: [team], by: [sms, email]}]}`, rungGap, 2*rungGap, 3*rungGap)})
	h.startServices()
	h.waitStates([]string{f.servers[0].id}, events.StateUp, 60*time.Second)

	f.servers[0].port.close()
	var t0 time.Time // the opening page: the policy's clock
	wait.Within(t, 90*time.Second, "the opening SMS to Alice", func() bool {
		if ms := h.smsTo(alicePhone); len(ms) > 0 {
			t0 = ms[0].Received
			return true
		}
		return false
	})
	notifier := h.procs["notifier"]
	// Each kill falls between two rungs: 4s after one, the notifier back
	// 2s later, 4s before the next. The last comes after the last rung,
	// where a rung sent again would show.
	for k := 1; k <= 3; k++ {
		time.Sleep(time.Until(t0.Add(time.Duration(k-1)*rungGap + 4*time.Second))) // the kill's moment is the test
		notifier.kill()
		time.Sleep(2 * time.Second)
		notifier.start()
	}
	// The last kill comes once the team's rung is delivered and recorded:
	// a kill between a provider taking a message and its record being
	// written sends that message again, which is a crash within a rung,
	// not between two.
	notifier.waitLog("step=escalation-3 severity=outage", 3*rungGap)
	notifier.kill()
	time.Sleep(2 * time.Second)
	notifier.start()
	notifier.waitLog("tocsin running", 60*time.Second)
	// The last kill may have cut the team's rung short: the notifier
	// finishes it when the held event comes back, and lets the event go
	// once the policy has nothing left to fire.
	wait.Within(t, 60*time.Second, "the team's emails", func() bool {
		return len(mailTo(h.mail.Messages(), carolEmail)) >= 2 && len(mailTo(h.mail.Messages(), bobEmail)) >= 2
	})
	h.settled(60 * time.Second)
	wait.Within(t, 60*time.Second, "the notifier to let the incident's events go", func() bool {
		ci := h.consumer(events.StreamEvents, "notifier")
		return ci != nil && ci.NumAckPending == 0
	}) // a rung sent again would have shown by now

	// Each rung once: Alice's opening SMS, her call, Bob's SMS, then the
	// team by SMS and email.
	alice, bob, calls := h.smsTo(alicePhone), h.smsTo(bobPhone), h.sms.Calls()
	if len(alice) != 2 || len(bob) != 2 || len(calls) != 1 || calls[0].To != alicePhone {
		t.Fatalf("%d SMS to Alice, %d to Bob, calls %+v; want 2, 2 and one to Alice", len(alice), len(bob), calls)
	}
	for _, to := range []string{aliceEmail, bobEmail, carolEmail} {
		if n := len(mailTo(h.mail.Messages(), to)); n != 2 {
			t.Errorf("%d emails to %s; want the opening and the team's rung", n, to)
		}
	}
	// Each on time: not before its rung fell due, and late by no more
	// than the redelivery wait (and a margin for a loaded machine).
	late := ackWait + 3*time.Second
	for _, c := range []struct {
		what string
		at   time.Time
		due  time.Duration
	}{
		{"the call to Alice", calls[0].Received, rungGap},
		{"the SMS to Bob", bob[0].Received, 2 * rungGap},
		{"the team's SMS to Alice", alice[1].Received, 3 * rungGap},
		{"the team's SMS to Bob", bob[1].Received, 3 * rungGap},
	} {
		if d := c.at.Sub(t0); d < c.due-time.Second || d > c.due+late {
			t.Errorf("%s came %s after the opening page; its rung is due at %s", c.what, d.Round(time.Millisecond), c.due)
		}
	}
	h.checkLogs()
}

func mailTo(ms []smtpserver.Message, to string) []smtpserver.Message {
	return slices.DeleteFunc(ms, func(m smtpserver.Message) bool { return !slices.Contains(m.To, to) })
}

// smsTo is the SMS the Twilio stand-in took for a phone, in order.
func (h *harness) smsTo(phone string) []twilioapi.Message {
	return slices.DeleteFunc(h.sms.Messages(), func(m twilioapi.Message) bool { return m.To != phone })
}
