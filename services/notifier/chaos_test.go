package notifier

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestNotifierKilledAtRandom kills the notifier without warning (its
// connection cut, its sends abandoned) and starts it again, over and over,
// while ten incidents open and resolve. Nobody misses a message; the
// duplicates, which only the window between a provider accepting a
// message and its record being written can cause, are counted.
func TestNotifierKilledAtRandom(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("kills and restarts the notifier for several seconds")
	}
	mail := smtpserver.Start(t, smtpserver.Options{})
	tw := twilioapi.Start(t, testSID, testToken)
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}]
staff:
  - {name: Alice, email: alice@example.net, phone: "%s"}
  - {name: Bob, email: bob@example.net, phone: "%s"}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN, api_url: "%s"}
`, alicePh, bobPh, mail.Port, tw.URL)), func(k string) (string, bool) {
		return map[string]string{"SID": testSID, "TOKEN": testToken}[k], true
	})
	if err != nil {
		t.Fatal(err)
	}
	// Slow providers widen the window in which a kill lands mid-send.
	tw.FailIf(func(twilioapi.Request) *twilioapi.Fault { time.Sleep(20 * time.Millisecond); return nil })

	srv := bustest.Start(t)
	world := srv.Connect(t, nil)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kills := 0
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			b := srv.Connect(t, quiet)
			b.TakeOver = 300 * time.Millisecond // the next instance takes over from a killed one at once
			n, err := New(cfg, Deps{Bus: b, Log: quiet}, WithAckWait(2*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			nctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { n.Run(nctx); close(done) }()
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(30+rand.IntN(200)) * time.Millisecond):
			}
			b.NC.Close() // no drain, no goodbye
			stop()
			<-done
			kills++
		}
	}()

	now := time.Now().UTC()
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("%s-kill%02d", now.Format("20060102"), i)
		ids = append(ids, id)
		at := now.Add(time.Duration(i) * time.Second)
		if err := world.Publish(ctx, events.New(id+"/opened", "verifier", at, &events.IncidentOpened{
			Incident: id, Opened: at, Title: fmt.Sprintf("mx%d (Incoming mail) is down", i),
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: at}},
		})); err != nil {
			t.Fatal(err)
		}
		// The outage lasts until its pages are out, as real ones do.
		wait.Within(t, 30*time.Second, "the pages of "+id, func() bool { return distinct(tw.Messages(), mail.Messages()) >= 8*i+4 })
		if err := world.Publish(ctx, events.New(id+"/resolved", "verifier", at.Add(time.Minute), &events.IncidentResolved{
			Incident: id, Opened: at, Resolved: at.Add(time.Minute), Title: fmt.Sprintf("mx%d (Incoming mail) is down", i), Servers: []string{"mx1"},
		})); err != nil {
			t.Fatal(err)
		}
		// Over before the next begins: an outage opening while another is
		// open would be part of its storm, and page nobody by SMS.
		wait.Within(t, 30*time.Second, "the resolution of "+id, func() bool { return distinct(tw.Messages(), mail.Messages()) >= 8*(i+1) })
	}
	// Every incident: an SMS and an email each, opening and resolution.
	want := len(ids) * 2 * 2
	wait.Within(t, 90*time.Second, fmt.Sprintf("every message (%d sms, %d email so far)", len(tw.Messages()), len(mail.Messages())), func() bool {
		return distinct(tw.Messages(), mail.Messages()) >= want*2
	})
	cancel()
	<-stopped

	counts := map[string]int{}
	for _, m := range tw.Messages() {
		word := strings.Fields(m.Body)
		counts[fmt.Sprintf("sms %s %s %s", m.To, word[0], word[1])]++
	}
	for _, m := range mail.Messages() {
		counts["email "+m.MessageID]++
	}
	dups := 0
	for k, c := range counts {
		if c > 1 {
			dups += c - 1
			t.Logf("%s: %d times", k, c)
		}
	}
	t.Logf("notifier killed %d times; %d messages, %d duplicates", kills, len(tw.Messages())+len(mail.Messages()), dups)
	if len(counts) != want*2 {
		t.Errorf("%d distinct messages, want %d: a message was lost", len(counts), want*2)
	}
	if kills < 10 {
		t.Errorf("killed only %d times", kills)
	}
	// A kill abandons at most the sends in flight, one per worker.
	if dups > kills {
		t.Errorf("%d duplicates for %d kills: more than the documented window explains", dups, kills)
	}
}

// distinct counts the different messages sent: SMS by recipient and first
// two words ("DOWN code", "RESOLVED code"), email by Message-ID.
// Incidents go one after the other, so 8*i+4 distinct messages say that
// incident i's pages are out.
func distinct(sms []twilioapi.Message, mail []smtpserver.Message) int {
	seen := map[string]bool{}
	for _, m := range sms {
		w := strings.Fields(m.Body)
		seen[m.To+" "+w[0]+" "+w[1]] = true
	}
	for _, m := range mail {
		seen[m.MessageID] = true
	}
	return len(seen)
}
