package notifier

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestStormAcrossDatacentres: four datacentres lose a box each within the
// group window. Each is its own incident (a datacentre groups its own), and
// each person's phone rings once, with an SMS that names the storm: how
// many boxes are down in how many datacentres (group_wait gathers them
// before the first page goes); the emails, one per incident, tell of
// each. Within the window, news no worse than the page is emailed: the
// people on call were woken for an outage moments ago. After it, a box
// going down pages at once.
func TestStormAcrossDatacentres(t *testing.T) {
	t.Parallel()
	r := startNotifierWith(t, `
datacentres: {dc1: {name: DC One}, dc2: {name: DC Two}, dc3: {name: DC Three}, dc4: {name: DC Four}, dc5: {name: DC Five}}
boxes:
  - {id: mx, name: Incoming mail, datacentre: dc1, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}
  - {id: web, name: Websites, datacentre: dc2, servers: [{id: web1, check: "tcp://web1.internal:80"}]}
  - {id: db, name: Databases, datacentre: dc3, servers: [{id: db1, check: "tcp://db1.internal:3306"}]}
  - {id: ftp, name: FTP, datacentre: dc4, servers: [{id: ftp1, check: "tcp://ftp1.internal:21"}]}
  - {id: av, name: AV, datacentre: dc5, servers: [{id: av1, check: "tcp://av1.internal:25"}, {id: av2, check: "tcp://av2.internal:25"}]}
staff:
  - {name: Alice, email: alice@example.net, phone: "`+alicePh+`"}
  - {name: Bob, email: bob@example.net, phone: "`+bobPh+`"}
`, "group_window: 8s, group_wait: 2s")
	now := time.Now().UTC()
	day := now.Format("20060102")
	open := func(id, server, box string, state events.BoxState) {
		sev := events.SeverityOutage
		if state == events.BoxDegraded {
			sev = events.SeverityDegraded
		}
		r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
			Incident: id, Opened: now, Title: server + " is down", Severity: sev,
			Servers: []events.AffectedServer{{Server: server, Box: box, Check: "tcp://" + server + ":1", Since: now, BoxState: state}},
		}))
	}
	boxes := [][2]string{{"mx1", "mx"}, {"web1", "web"}, {"db1", "db"}, {"ftp1", "ftp"}}
	for i, b := range boxes {
		open(fmt.Sprintf("%s-dc%d", day, i+1), b[0], b[1], events.BoxDown)
	}
	emails := func(to string) int {
		n := 0
		for _, m := range r.mail.Messages() {
			if m.To[0] == to && opening(m.Subject) {
				n++
			}
		}
		return n
	}
	wait.Within(t, 30*time.Second, "every incident emailed to each", func() bool {
		return emails("alice@example.net") == 4 && emails("bob@example.net") == 4
	})
	if got := r.tally(); got["sms "+alicePh] != 1 || got["sms "+bobPh] != 1 {
		t.Errorf("messages %v: want one SMS per person for the storm", got)
	}
	for _, m := range r.twilio.Messages() {
		if !strings.HasPrefix(m.Body, "STORM: 4 boxes down in 4 datacentres. DOWN ") {
			t.Errorf("the storm's SMS to %s does not name the storm: %q", m.To, m.Body)
		}
	}

	// Within the window, a degraded box elsewhere is no worse than the
	// outage paged: emailed only.
	open(day+"-dc5", "av1", "av", events.BoxDegraded)
	wait.Within(t, 30*time.Second, "the fifth incident emailed", func() bool { return emails("alice@example.net") == 5 })
	if got := r.tally(); got["sms "+alicePh] != 1 || got["sms "+bobPh] != 1 {
		t.Errorf("messages %v: a degraded box in the storm rang a phone", got)
	}
	// Its box going down, once the storm's window is over, is worse than
	// what its incident paged: the phones ring at once.
	// Each person's page was claimed before their SMS reached the
	// stand-in: the window is over once it has passed since the last.
	sms := r.twilio.Messages()
	last := sms[len(sms)-1].Received
	wait.Within(t, 30*time.Second, "the storm's window over", func() bool { return time.Since(last) > 8*time.Second })
	r.publish(t, events.New(day+"-dc5/updated/1", "verifier", now, &events.IncidentUpdated{
		Incident: day + "-dc5", Seq: 1, At: now, Opened: now, Title: "2 servers of AV are down", Severity: events.SeverityOutage,
		Added: []events.AffectedServer{{Server: "av2", Box: "av", Check: "tcp://av2:1", Since: now, BoxState: events.BoxDown}},
		Boxes: []events.BoxStatus{{Box: "av", State: events.BoxDown}}, Down: []string{"av1", "av2"},
	}))
	wait.Within(t, 30*time.Second, "NOW DOWN on both phones", func() bool {
		got := r.tally()
		return got["sms "+alicePh] == 2 && got["sms "+bobPh] == 2
	})
	// The four other incidents still open: the page names the storm.
	for _, m := range r.twilio.Messages()[2:] {
		if !strings.HasPrefix(m.Body, "STORM: 5 boxes down in 5 datacentres. NOW DOWN: AV - no server answers") {
			t.Errorf("second SMS %q", m.Body)
		}
	}

	// The storm over: the resolution of the one incident each phone was
	// paged about goes by SMS; the others' by email only.
	for i, b := range boxes {
		id := fmt.Sprintf("%s-dc%d", day, i+1)
		r.publish(t, events.New(id+"/resolved", "verifier", now, &events.IncidentResolved{
			Incident: id, Opened: now, Resolved: now.Add(time.Minute), Title: b[0] + " is down", Servers: []string{b[0]},
		}))
	}
	resolutions := func(to string) int {
		n := 0
		for _, m := range r.mail.Messages() {
			if m.To[0] == to && strings.Contains(m.Subject, "] RESOLVED:") {
				n++
			}
		}
		return n
	}
	wait.Within(t, 30*time.Second, "every resolution emailed", func() bool {
		return resolutions("alice@example.net") == 4 && resolutions("bob@example.net") == 4
	})
	for _, phone := range []string{alicePh, bobPh} {
		n := 0
		for _, m := range r.twilio.Messages() {
			if m.To == phone && strings.HasPrefix(m.Body, "RESOLVED ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d resolution SMS to %s: want one, for the incident it was paged about", n, phone)
		}
	}
}

// TestBoxAfterBox: a datacentre losing its boxes one after another, in
// one incident: the first page says what is down, the boxes that follow
// within group_window are gathered, and one NOW DOWN names them when the
// window is over. Not a page per box.
func TestBoxAfterBox(t *testing.T) {
	t.Parallel()
	var fleet strings.Builder
	fleet.WriteString("datacentres: {dc1: {name: DC One}}\nboxes:\n")
	for i := range 12 {
		fmt.Fprintf(&fleet, "  - {id: b%d, name: Box %d, datacentre: dc1, servers: [{id: s%d, check: \"tcp://s%d.internal:25\"}]}\n", i, i, i, i)
	}
	fleet.WriteString("staff:\n  - {name: Alice, email: alice@example.net, phone: \"" + alicePh + "\"}\n")
	r := startNotifierWith(t, fleet.String(), "group_window: 3s, update_every: 1m")
	now := time.Now().UTC()
	id := now.Format("20060102") + "-boxes1"
	r.publish(t, events.New(id+"/opened", "verifier", now, &events.IncidentOpened{
		Incident: id, Opened: now, Title: "s0 (Box 0) is down", Severity: events.SeverityOutage, Datacentre: "dc1",
		Servers: []events.AffectedServer{{Server: "s0", Box: "b0", Check: "tcp://s0:25", Since: now, BoxState: events.BoxDown}},
	}))
	wait.Within(t, 30*time.Second, "the first page", func() bool { return len(r.twilio.Messages()) == 1 })
	down := []string{"s0"}
	for i := 1; i < 12; i++ {
		s := fmt.Sprintf("s%d", i)
		down = append(down, s)
		at := time.Now().UTC()
		r.publish(t, events.New(fmt.Sprintf("%s/updated/%d", id, i), "verifier", at, &events.IncidentUpdated{
			Incident: id, Seq: int64(i), At: at, Opened: now, Title: fmt.Sprintf("%d servers down in %d boxes at DC One", i+1, i+1), Severity: events.SeverityOutage,
			Added: []events.AffectedServer{{Server: s, Box: fmt.Sprintf("b%d", i), Check: "tcp://" + s + ":25", Since: at, BoxState: events.BoxDown}},
			Boxes: []events.BoxStatus{{Box: fmt.Sprintf("b%d", i), State: events.BoxDown}}, Down: slices.Clone(down),
		}))
	}
	wait.Within(t, 30*time.Second, "the boxes gathered into one page", func() bool { return len(r.twilio.Messages()) >= 2 })
	first := r.twilio.Messages()[0].Received
	if sms := r.twilio.Messages()[1]; !strings.HasPrefix(sms.Body, "NOW DOWN: Box 1, Box 2, Box 3 and 8 more - no server answers") ||
		sms.Received.Before(first.Add(3*time.Second-100*time.Millisecond)) {
		t.Errorf("second SMS %q, %s after the first: want every box since, once the window was over", sms.Body, sms.Received.Sub(first))
	}
	// Long enough for a page per box to show, had there been one.
	wait.Within(t, 30*time.Second, "the window after the second page over", func() bool { return time.Since(r.twilio.Messages()[1].Received) > 4*time.Second })
	if n := len(r.twilio.Messages()); n != 2 {
		t.Errorf("%d SMS for 12 boxes going down one after another: want 2", n)
	}
}
