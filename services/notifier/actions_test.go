package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestActionsInTheNextUpdate: failover taking servers out of their pool
// pages nobody; the incident's next update email lists what it did, with
// the outcomes, once, and the SMS stays as it was.
func TestActionsInTheNextUpdate(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_window: 1s, update_every: 1s, repeat_every: 1h")
	now := time.Now().UTC().Truncate(time.Second)
	id := now.Format("20060102") + "-act1on"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now, Reason: "connection refused", BoxState: events.BoxDegraded}},
	}))
	wait.Within(t, 10*time.Second, "the opening", func() bool { return len(r.mail.Messages()) == 2 && len(r.twilio.Messages()) == 1 })

	done := &events.ServerAction{Server: "mx1", Box: "mx", Action: events.ActionRemove, Via: "haproxy", Target: "haproxy mail/mx1",
		Outcome: events.OutcomeDone, Attempt: 1, Change: "mx1/state/1", Incident: id, InPool: []string{"mx2"}, At: now}
	retrying := &events.ServerAction{Server: "mx1", Box: "mx", Action: events.ActionRemove, Via: "webhook", Target: "webhook https://lb.internal/pool",
		Outcome: events.OutcomeRetrying, Attempt: 1, Error: "503 Service Unavailable", FailingSince: now, Change: "mx1/state/1", Incident: id, At: now}
	failed := *retrying
	failed.Outcome, failed.Attempt, failed.Error = events.OutcomeFailed, 2, "404 Not Found"
	for range 2 { // a redelivery is logged once
		r.publish(t, events.New("mx1/action/haproxy/1", "failover", now, done))
	}
	r.publish(t, events.New("mx1/action/webhook/1", "failover", now, retrying))
	r.publish(t, events.New("mx1/action/webhook/2", "failover", now, &failed))
	kv, err := r.b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 10*time.Second, "the actions logged", func() bool {
		l, err := loggedActions(context.Background(), kv, id)
		return err == nil && len(l.Actions) == 2
	})
	time.Sleep(time.Second) // room for a message too many
	if n, m := len(r.twilio.Messages()), len(r.mail.Messages()); n != 1 || m != 2 {
		t.Fatalf("%d SMS and %d emails after the actions, want still 1 and 2: actions page nobody", n, m)
	}

	up := now.Add(time.Minute)
	r.publish(t, events.New(id+"/updated/1", "verifier", up, &events.IncidentUpdated{
		Incident: id, Seq: 1, At: up, Opened: now, Title: "mx1 (Incoming mail) is down",
		Boxes: []events.BoxStatus{{Box: "mx", State: events.BoxDegraded, Up: []string{"mx2"}}}, Down: []string{"mx1"},
	}))
	wait.Within(t, 10*time.Second, "the update", func() bool { return len(updates(r)) == 2 })
	want := []string{
		"mx1 taken out of haproxy mail/mx1: done at " + now.Format("15:04"),
		"mx1 taken out of webhook https://lb.internal/pool: FAILED at " + now.Format("15:04") + " (404 Not Found)",
	}
	for _, m := range updates(r) {
		for _, w := range want {
			if strings.Count(m.Text, w) != 1 || !strings.Contains(m.HTML, w) {
				t.Errorf("update to %v does not say %q once:\n%s", m.To, w, m.Text)
			}
		}
		if strings.Contains(m.Text, "503") {
			t.Errorf("update to %v tells of an attempt still being retried:\n%s", m.To, m.Text)
		}
	}
	for _, s := range r.twilio.Messages() {
		if strings.Contains(s.Body, "haproxy") {
			t.Errorf("SMS %q tells of failover", s.Body)
		}
	}

	// Told once: the next update lists only what failover did since.
	r.publish(t, events.New("mx1/action/haproxy/2", "failover", up, &events.ServerAction{Server: "mx1", Box: "mx", Action: events.ActionRestore,
		Via: "haproxy", Target: "haproxy mail/mx1", Outcome: events.OutcomeDone, Attempt: 1, Change: "mx1/state/2", Incident: id, At: up}))
	wait.Within(t, 10*time.Second, "the restore logged", func() bool {
		l, err := loggedActions(context.Background(), kv, id)
		return err == nil && len(l.Actions) == 3
	})
	up2 := up.Add(time.Minute)
	r.publish(t, events.New(id+"/updated/2", "verifier", up2, &events.IncidentUpdated{
		Incident: id, Seq: 2, At: up2, Opened: now, Title: "mx1 and mx3 (Incoming mail) are down",
		Added: []events.AffectedServer{{Server: "mx3", Box: "mx", Check: "tcp://mx3.internal:25", Since: up2, Reason: "timeout", BoxState: events.BoxDegraded}},
		Down:  []string{"mx1", "mx3"},
	}))
	wait.Within(t, 10*time.Second, "the second update", func() bool { return len(updates(r)) == 4 })
	for _, m := range updates(r)[2:] {
		if !strings.Contains(m.Text, "mx1 put back in haproxy mail/mx1: done at "+up.Format("15:04")) || strings.Contains(m.Text, "taken out of") {
			t.Errorf("second update to %v should list the restore alone:\n%s", m.To, m.Text)
		}
	}
}

func updates(r *running) []smtpserver.Message {
	var out []smtpserver.Message
	for _, m := range r.mail.Messages() {
		if strings.Contains(m.Subject, "] UPDATE:") {
			out = append(out, m)
		}
	}
	return out
}

func TestActionLine(t *testing.T) {
	at := time.Date(2026, 11, 21, 2, 15, 30, 0, time.UTC)
	for _, c := range []struct {
		name string
		a    events.ServerAction
		want string
	}{
		{"removed", events.ServerAction{Server: "mx1", Action: events.ActionRemove, Via: "haproxy", Target: "haproxy mail/mx1", Outcome: events.OutcomeDone, At: at},
			"mx1 taken out of haproxy mail/mx1: done at 02:15"},
		{"restored", events.ServerAction{Server: "mx1", Action: events.ActionRestore, Via: "webhook", Outcome: events.OutcomeDone, At: at},
			"mx1 put back in webhook: done at 02:15"},
		{"failed", events.ServerAction{Server: "web1", Action: events.ActionRemove, Via: "webhook", Target: "webhook pool web", Outcome: events.OutcomeFailed, Error: "404 Not Found", At: at},
			"web1 taken out of webhook pool web: FAILED at 02:15 (404 Not Found); do it by hand"},
		{"held", events.ServerAction{Server: "mx1", Action: events.ActionRemove, Outcome: events.OutcomeHeld, Error: "the last server of its box in the pool", At: at},
			"mx1 kept in its pool at 02:15: the last server of its box in the pool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := actionLine(c.a); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
