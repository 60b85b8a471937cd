package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// pageComponents counts the status page's components by status: servers
// and boxes (component groups) apart.
func (h *harness) pageComponents() (servers, boxes map[string]int, err error) {
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + h.pageAddr + "/api/v2/components.json")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("components.json: %s", resp.Status)
	}
	var body struct {
		Components []struct {
			Status string `json:"status"`
			Group  bool   `json:"group"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, nil, fmt.Errorf("components.json: %w", err)
	}
	servers, boxes = map[string]int{}, map[string]int{}
	for _, c := range body.Components {
		if c.Group {
			boxes[c.Status]++
		} else {
			servers[c.Status]++
		}
	}
	return servers, boxes, nil
}

// waitMessages waits until every wanted message has arrived, then until
// the pipeline has settled, where any duplicate would have shown, and
// returns what arrived.
func (h *harness) waitMessages(want []delivery, codes map[string]string, within time.Duration) map[delivery]int {
	h.t.Helper()
	var got map[delivery]int
	ok := wait.Until(context.Background(), within, wait.Spaced(250*time.Millisecond, func() bool {
		got = tally(h.mail.Messages(), h.sms.Messages(), codes)
		for _, d := range want {
			if got[d] == 0 {
				return false
			}
		}
		return true
	}))
	if !ok {
		missing, _, _, _ := compare(got, want)
		h.t.Fatalf("after %v, %d of %d messages still missing: %v", within, len(missing), len(want), missing)
	}
	h.settled(60 * time.Second) // where a duplicate would have shown
	return tally(h.mail.Messages(), h.sms.Messages(), codes)
}

// smsSent lists every SMS the Twilio stand-in took, in order, one a line.
func (h *harness) smsSent() string {
	var b strings.Builder
	for _, m := range h.sms.Messages() {
		fmt.Fprintf(&b, "\n\tto %s: %s", m.To, m.Body)
	}
	return b.String()
}

// TestStormAndLeaderLoss fails a thousand servers at once, kills the
// nats-server leading the results stream while the storm is being
// verified, and checks that every server is confirmed down, that the
// storm opens one incident per datacentre, that each person hears of each
// exactly once by each channel, and that the resolution follows the same
// way once the servers answer again.
func TestStormAndLeaderLoss(t *testing.T) {
	build(t) // or skip, before anything else is set up
	// Alone, not beside the other cluster tests: under their load the
	// storm's incidents open in another order, and which of them the one
	// storm page names changes with it (see pages).
	dcs := []string{"dc1", "dc2", "dc3", "dc4"}
	f := newFleet(t, 250, 4, dcs)
	// The services keep their default ack wait, as in production: a
	// handler may then wait out a stream's leader election. (With one
	// shorter than an election, a message sent while the delivery record
	// could not be written is sent again.)
	h := newHarness(t, f, settings{interval: "2s", timeout: "1s", groupWindow: "2m"})
	h.startServices()
	var ids []string
	for _, s := range f.servers {
		ids = append(ids, s.id)
	}
	start := time.Now()
	h.waitStates(ids, events.StateUp, 90*time.Second)
	t.Logf("all %d servers seen up %v after the services started", len(ids), time.Since(start).Round(100*time.Millisecond))

	// The storm: every port closes at once.
	stormAt := time.Now()
	for _, s := range f.servers {
		s.port.close()
	}
	if !wait.Until(context.Background(), 60*time.Second, wait.Spaced(50*time.Millisecond, func() bool { return len(h.watch.snapshot()) > 0 })) {
		t.Fatal("no incident opened within 60s of the storm")
	}
	ctx := ctxFor(t, 5*time.Minute)
	leader, err := streamLeader(ctx, h.js, events.StreamResults)
	if err != nil {
		t.Fatal(err)
	}
	eventsLeader, _ := streamLeader(ctx, h.js, events.StreamEvents)
	states, _ := h.serverStates(ctx)
	down := 0
	for _, st := range states {
		if st == events.StateDown {
			down++
		}
	}
	killAt := time.Now()
	h.cluster.node(leader).kill()
	t.Logf("first incident %v after the storm began; killed %s, leader of %s (events led by %s), with %d of %d servers confirmed down",
		killAt.Sub(stormAt).Round(10*time.Millisecond), leader, events.StreamResults, eventsLeader, down, len(ids))
	if down == len(ids) {
		t.Errorf("the storm was verified before the leader was killed: the kill proves nothing about a storm in flight")
	}

	// The pipeline going again: new results stored under a new leader,
	// new events after them.
	for _, stream := range []string{events.StreamResults, events.StreamEvents} {
		var took time.Duration
		if !wait.Until(context.Background(), 60*time.Second, wait.Spaced(100*time.Millisecond, func() bool {
			last, err := lastStored(ctx, h.js, stream)
			if err == nil && last.After(killAt) {
				took = time.Since(killAt)
				return true
			}
			return false
		})) {
			t.Fatalf("%s stored nothing new within 60s of the kill", stream)
		}
		newLeader, _ := streamLeader(ctx, h.js, stream)
		t.Logf("%s stored again %v after the kill (leader now %s)", stream, took.Round(10*time.Millisecond), newLeader)
	}

	h.waitStates(ids, events.StateDown, 2*time.Minute)
	t.Logf("all %d servers confirmed down %v after the storm began", len(ids), time.Since(stormAt).Round(100*time.Millisecond))
	if !wait.Until(context.Background(), 30*time.Second, wait.Spaced(500*time.Millisecond, func() bool {
		servers, boxes, err := h.pageComponents()
		return err == nil && servers["major_outage"] == len(ids) && boxes["major_outage"] == 250
	})) {
		servers, boxes, err := h.pageComponents()
		t.Errorf("the status page does not show every server and box down: servers %v, boxes %v, err %v", servers, boxes, err)
	}

	// One incident per datacentre, each opened once.
	h.watch.caughtUp(t, h.js, 60*time.Second)
	incidents := h.watch.snapshot()
	perDC := map[string][]string{}
	codes := map[string]string{}
	var opened []string
	for id, in := range incidents {
		perDC[in.datacentre] = append(perDC[in.datacentre], id)
		codes[shortCode(id)] = id
		opened = append(opened, id)
		if in.opened != 1 {
			t.Errorf("incident %s opened %d times", id, in.opened)
		}
	}
	slices.Sort(opened)
	t.Logf("%d incidents for %d servers: %v", len(incidents), len(ids), perDC)
	for _, dc := range dcs {
		if len(perDC[dc]) != 1 {
			t.Errorf("datacentre %s has %d incidents, want 1: %v", dc, len(perDC[dc]), perDC[dc])
		}
	}
	if len(incidents) != len(dcs) {
		t.Errorf("%d incidents, want %d (one per datacentre)", len(incidents), len(dcs))
	}

	got := h.waitMessages(expected(opened, kindDown), codes, 60*time.Second)
	missing, duplicated, unexpected, _ := compare(got, expected(opened, kindDown))
	if len(missing)+len(duplicated)+len(unexpected) > 0 {
		t.Errorf("outage messages: missing %v, more than once %v, unexpected %v", missing, duplicated, unexpected)
	}
	// One SMS for the storm, however many datacentres: Alice was paged
	// about one incident and emailed about each.
	if problems := pages(got, opened, false); len(problems) > 0 {
		t.Errorf("SMS pages: %v; the SMS sent:%s", problems, h.smsSent())
	}

	// The killed server comes back and catches up; then the fleet does.
	h.cluster.node(leader).start()
	h.cluster.waitMetaLeader(60 * time.Second)
	backAt := time.Now()
	for _, s := range f.servers {
		if err := s.port.open(); err != nil {
			t.Fatal(err)
		}
	}
	h.waitStates(ids, events.StateUp, 2*time.Minute)
	t.Logf("all %d servers up again %v after their ports reopened", len(ids), time.Since(backAt).Round(100*time.Millisecond))
	// Each server's own work tells its incident it is back; should that
	// be lost, the verifier's sweep does, within two looks of 30s.
	if !wait.Until(context.Background(), 2*time.Minute, wait.Spaced(250*time.Millisecond, func() bool {
		for _, in := range h.watch.snapshot() {
			if in.resolved == 0 {
				return false
			}
		}
		return true
	})) {
		t.Fatalf("not every incident resolved within 2m: %v", h.watch.snapshot())
	}
	for line := range strings.Lines(h.procs["verifier"].log()) {
		if strings.Contains(line, "record says it is back") || strings.Contains(line, "could not be read") {
			t.Logf("a leave was lost and the sweep made up for it: %s", line)
		}
	}
	h.watch.caughtUp(t, h.js, 60*time.Second)
	for id, in := range h.watch.snapshot() {
		if in.resolved != 1 {
			t.Errorf("incident %s resolved %d times", id, in.resolved)
		}
		if _, ok := incidents[id]; !ok {
			t.Errorf("incident %s opened after the storm was confirmed", id)
		}
	}
	want := expected(opened, kindDown, kindResolved)
	got = h.waitMessages(want, codes, 60*time.Second)
	missing, duplicated, unexpected, _ = compare(got, want)
	if len(missing)+len(duplicated)+len(unexpected) > 0 {
		t.Errorf("messages: missing %v, more than once %v, unexpected %v", missing, duplicated, unexpected)
	}
	if problems := pages(got, opened, true); len(problems) > 0 {
		t.Errorf("SMS pages: %v; the SMS sent:%s", problems, h.smsSent())
	}
	t.Logf("%d outage and resolution messages, each once; %d update digests besides", len(want), updates(got))
	if n, bad := h.watch.duplicateEvents(); n > 0 || len(bad) > 0 {
		t.Errorf("%d incident events stored twice under one id; undecodable: %v", n, bad)
	}
	h.checkLogs()
}

// checkLogs fails the test if a process logged a secret or an address.
func (h *harness) checkLogs() {
	h.t.Helper()
	for name, p := range h.procs {
		out := p.log()
		for _, secret := range []string{smtpPassword, twilioToken, aliceEmail, bobEmail, alicePhone} {
			if contains(out, secret) {
				h.t.Errorf("%s's log shows %q", name, secret)
			}
		}
	}
}
