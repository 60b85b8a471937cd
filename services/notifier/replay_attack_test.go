package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestReplayedAckWebhook: Alice's "ACK" acknowledges the incident she was
// paged about. The same signed request sent again later, when she has
// been paged about another incident, acknowledges nothing: a message is
// acted on once, by its MessageSid.
func TestReplayedAckWebhook(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "repeat_every: 1h")
	now := time.Now().UTC()
	open := func(id string) {
		r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
			Incident: id, Opened: now, Title: "mx1 (Incoming mail) is down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: now}},
		}))
	}
	first, second := now.Format("20060102")+"-first1", now.Format("20060102")+"-secnd2"
	open(first)
	wait.Within(t, 10*time.Second, "the first page", func() bool { return len(r.twilio.Messages()) == 1 })
	// The SMS reaches the stand-in a moment before the notifier notes
	// what a reply to it stands for.
	alice, _ := (&Notifier{cfg: r.cfg}).staffByPhone(alicePh)
	kv, err := r.b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the page noted for replies", func() bool {
		_, err := kv.Get(context.Background(), "last."+staffKey(alice))
		return err == nil
	})
	reply := twilioapi.Inbound{From: alicePh, To: "+447700900000", Body: "ACK", MessageSID: twilioapi.NewSID("SM")}
	if ans, err := r.twilio.SendInbound(context.Background(), r.public+pathTwilioSMS, reply); err != nil || ans.Status != 200 {
		t.Fatalf("the reply: %v %+v", err, ans)
	}
	acked := func() []string {
		c, err := r.b.JS.OrderedConsumer(context.Background(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"incident.*.acknowledged"}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for {
			m, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
			if err != nil {
				return ids
			}
			ids = append(ids, strings.Split(m.Subject(), ".")[1])
		}
	}
	wait.Within(t, 10*time.Second, "the first acknowledged", func() bool { return len(acked()) == 1 })

	// Resolved, and a new incident pages her: the first incident's
	// storm is over.
	r.publish(t, events.New(first+"/resolved", "verifier", now, &events.IncidentResolved{
		Incident: first, Opened: now, Resolved: now.Add(time.Minute), Title: "mx1 (Incoming mail) is down", Servers: []string{"mx1"},
	}))
	wait.Within(t, 10*time.Second, "the resolution", func() bool { return len(r.twilio.Messages()) == 2 })
	open(second)
	wait.Within(t, 10*time.Second, "the second page", func() bool { return len(r.twilio.Messages()) == 3 })

	ans, err := r.twilio.SendInbound(context.Background(), r.public+pathTwilioSMS, reply) // the very same request
	if err != nil {
		t.Fatal(err)
	}
	if ans.Status != 200 || !strings.Contains(ans.Body, "first1") {
		t.Errorf("the replay answered %d %q: want the first incident's acknowledgement, as before", ans.Status, ans.Body)
	}
	if got := acked(); len(got) != 1 || got[0] != first {
		t.Errorf("acknowledged %v: the replay acknowledged the second incident", got)
	}
}
