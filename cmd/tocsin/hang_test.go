package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestHangingServer: web1 stops answering without closing the connection,
// and web2 turns slow, answering within its timeout. Other locations are
// asked as soon as a check has waited hang_after, so that web1 is
// confirmed down with the re-checks and its own check, without waiting a
// timeout more; web2, slow but answering, is no outage.
func TestHangingServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs probers and a verifier")
	}
	t.Parallel()
	var hang, slow atomic.Bool
	var release sync.Once
	done := make(chan struct{}) // ends the hanging requests at cleanup
	t.Cleanup(func() { release.Do(func() { close(done) }) })
	web := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/web1" && hang.Load():
			select {
			case <-r.Context().Done():
			case <-done:
			}
		case r.URL.Path == "/web2" && slow.Load():
			time.Sleep(1500 * time.Millisecond) // past hang_after, within the timeout
		}
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go web.Serve(l)
	t.Cleanup(func() { release.Do(func() { close(done) }); web.Close() })

	cfg := fmt.Sprintf(`site: {name: Example Hosting}
checks: {interval: 3s, timeout: 2500ms, hang_after: 800ms, verify: {locations: 2, quorum: 2}}
locations: [lon1, ams1, nyc1]
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 1, from: alarm@example.net, tls: none}}
roles: {web: {label: Web hosting, colour: "#2e86de"}}
boxes:
  - id: web
    name: Web
    role: web
    servers:
      - {id: web1, check: "http://%[1]s/web1"}
      - {id: web2, check: "http://%[1]s/web2"}
`, l.Addr())
	cfgFile := writeConfig(t, cfg)
	nats := bustest.Start(t)
	common := []string{"run", "--config", cfgFile, "--nats", nats.URL, "--shutdown-timeout", "10s"}
	startProcess(t, append(common, "--services", "prober", "--location", "lon1,ams1,nyc1")...)
	startProcess(t, append(common, "--services", "verifier")...)

	b := nats.Connect(t, nil)
	ctx := context.Background()
	kv, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	state := func(id string) events.ServerState {
		var rec events.ServerRecord
		if e, err := kv.Get(ctx, id); err == nil {
			_ = json.Unmarshal(e.Value(), &rec)
		}
		return rec.State
	}
	wait.Within(t, 30*time.Second, "both servers up", func() bool { return state("web1") == events.StateUp && state("web2") == events.StateUp })

	// web2 slow: each check waits past hang_after, so other locations are
	// asked, and then it answers: a false alarm, never an incident.
	slow.Store(true)
	falseAlarm := watchSubject(t, b.JS, events.SubjectFalseAlarm("web2"))
	var why string
	wait.Within(t, 30*time.Second, "web2's slow check told from a failure", func() bool {
		for _, ev := range falseAlarm() {
			if fa, ok := ev.Data.(*events.FalseAlarm); ok {
				why = fa.Why
				return true
			}
		}
		return false
	})
	if want := "slow, not down"; !strings.Contains(why, want) {
		t.Errorf("web2's false alarm says %q, want %q in it", why, want)
	}

	// web1 hangs: confirmed down, its incident saying the re-checks were
	// asked while its check went unanswered.
	hang.Store(true)
	incidents := watchSubject(t, b.JS, events.SubjectIncidents)
	var opened *events.IncidentOpened
	wait.Within(t, 60*time.Second, "web1's incident", func() bool {
		for _, ev := range incidents() {
			if o, ok := ev.Data.(*events.IncidentOpened); ok && o.Servers[0].Server == "web1" {
				opened = o
				return true
			}
		}
		return false
	})
	if v := opened.Servers[0].Verification; !strings.Contains(v, "went unanswered") {
		t.Errorf("web1's incident: verification %q, want it asked while the check went unanswered", v)
	}
	for _, ev := range incidents() {
		if o, ok := ev.Data.(*events.IncidentOpened); ok && o.Servers[0].Server == "web2" {
			t.Errorf("web2, slow but answering, opened incident %s", o.Incident)
		}
	}
	if s := state("web2"); s == events.StateDown {
		t.Errorf("web2 is %s", s)
	}
}

// watchSubject reads the events on subject from the start of the events
// stream; each call returns every one stored so far.
func watchSubject(t *testing.T, js jetstream.JetStream, subject string) func() []events.Event {
	t.Helper()
	var mu sync.Mutex
	var got []events.Event
	c, err := js.OrderedConsumer(context.Background(), events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		if ev, err := events.Decode(m.Subject(), m.Data()); err == nil {
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return func() []events.Event {
		mu.Lock()
		defer mu.Unlock()
		return append([]events.Event(nil), got...)
	}
}
