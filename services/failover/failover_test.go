package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/failover/internal/haproxy"
)

// world is what failover works with: JetStream, and the fleet's
// configuration; the tests play the verifier, writing each server's state
// to tocsin-servers and publishing its change, as the verifier does.
type world struct {
	b    *bus.Bus
	cfg  *config.Config
	st   stores
	logs *logbuf.Buffer
	seq  map[string]int
}

// failoverYAML is the failover section of box web.
func newWorld(t *testing.T, failoverYAML string, env map[string]string) *world {
	t.Helper()
	dir := t.TempDir()
	yaml := fmt.Sprintf(`
site: {name: Test Hosting}
locations: [lon1]
boxes:
  - id: web
    name: Web
    servers:
      - {id: web1, check: "http://web1.internal/"}
      - {id: web2, check: "http://web2.internal/"}
    failover: %s
  - id: db
    name: Databases
    servers:
      - {id: db1, check: "tcp://db1.internal:3306"}
staff: [{name: Sam, email: sam@example.org}]
providers:
  smtp: {host: 127.0.0.1, from: alarm@example.org}
`, failoverYAML)
	cfg, err := config.Parse(dir+"/tocsin.yaml", []byte(yaml), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	w := &world{cfg: cfg, logs: &logbuf.Buffer{}, seq: map[string]int{}}
	w.b = bustest.Start(t).Connect(t, slog.New(slog.NewTextHandler(w.logs, nil)))
	ctx := context.Background()
	if w.st.records, err = w.b.KV(ctx, events.BucketFailover); err != nil {
		t.Fatal(err)
	}
	if w.st.servers, err = w.b.KV(ctx, events.BucketServers); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", w.logs.String())
		}
	})
	return w
}

func (w *world) service(opts ...Option) *Service {
	opts = append([]Option{WithBackoff(50*time.Millisecond, 200*time.Millisecond), WithRecheck(200 * time.Millisecond)}, opts...)
	return New(w.cfg, Deps{Bus: w.b, Log: slog.New(slog.NewTextHandler(w.logs, nil))}, opts...)
}

// run runs the service until the test ends.
func (w *world) run(t *testing.T, opts ...Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.service(opts...).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of being stopped")
		}
	})
}

// state writes the verifier's judgement of a server, as the verifier does
// before it publishes the change.
func (w *world) state(t *testing.T, server string, st events.ServerState, since time.Time) {
	t.Helper()
	b, _ := json.Marshal(events.ServerRecord{ID: server, State: st, Since: since})
	if _, err := w.st.servers.Put(context.Background(), server, b); err != nil {
		t.Fatal(err)
	}
}

// change moves a server from one state to another as the verifier would,
// and returns the event.
func (w *world) change(t *testing.T, server string, from, to events.ServerState) events.Event {
	t.Helper()
	now := time.Now().UTC()
	w.seq[server]++
	w.state(t, server, to, now)
	c := &events.ServerStateChanged{Server: server, Box: w.boxOf(server), From: from, To: to, Since: now}
	if to == events.StateDown {
		c.Reason, c.Incident = "connection refused", "20261121-"+server
	}
	ev := events.New(fmt.Sprintf("%s/state/%d-%d", server, w.seq[server], now.UnixMilli()), "verifier", now, c)
	if err := w.b.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func (w *world) boxOf(server string) string {
	t, _ := w.cfg.Target(server)
	return t.Box.ID
}

// actions is every action event on server so far, in order.
func (w *world) actions(t *testing.T, server string) []events.ServerAction {
	t.Helper()
	var out []events.ServerAction
	for _, ev := range bustest.Events(t, w.b, events.StreamEvents, events.SubjectServerAction(server)) {
		out = append(out, *ev.Data.(*events.ServerAction))
	}
	return out
}

// summary is the actions in a line each: "remove haproxy done 1".
func summary(as []events.ServerAction) string {
	var lines []string
	for _, a := range as {
		lines = append(lines, strings.TrimSpace(fmt.Sprintf("%s %s %s %d", a.Action, a.Via, a.Outcome, a.Attempt)))
	}
	return strings.Join(lines, "\n")
}

// backend is a web server on loopback that can stop answering and come
// back on the same address.
type backend struct {
	name string
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.serve(l)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) serve(l net.Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, b.name) })}
	go b.srv.Serve(l)
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func (b *backend) restart(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b.serve(l)
}

// lb is a real HAProxy in front of web1 and web2.
type lb struct {
	h          *servertest.HAProxy
	c          *haproxy.Client
	web1, web2 *backend
}

func startLB(t *testing.T) *lb {
	t.Helper()
	web1, web2 := startBackend(t, "web1"), startBackend(t, "web2")
	h := servertest.StartHAProxy(t, servertest.HAProxyOptions{Backend: "web", Servers: []servertest.HAProxyServer{
		{Name: "web1", Addr: web1.addr}, {Name: "web2", Addr: web2.addr},
	}})
	return &lb{h: h, c: haproxy.New(h.Socket, 5*time.Second), web1: web1, web2: web2}
}

func (l *lb) server(t *testing.T, name string) haproxy.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := l.c.Server(ctx, "web", name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (l *lb) is(t *testing.T, name string, st haproxy.State) bool {
	t.Helper()
	return l.server(t, name).Is(st)
}

// TestHAProxyFailover is the whole story against a real HAProxy: a backend
// stops answering, the verifier confirms it down, failover puts it in
// maintenance and the frontend keeps answering through the other; it
// comes back, and once it has been up for recover_after it is ready again.
func TestHAProxyFailover(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{recover_after: 2s, haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web1", events.StateUnknown, events.StateUp)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)

	if got := l.h.Answers(t, 4); got["web1"] != 2 || got["web2"] != 2 {
		t.Fatalf("before the outage the frontend was answered by %v, want web1 and web2 twice each", got)
	}
	l.web1.stop()
	if got := l.h.Answers(t, 4); got["web2"] != 2 || got["503 Service Unavailable"] != 2 {
		t.Fatalf("with web1 dead and in the pool the frontend was answered by %v, want half failing", got)
	}

	// Suspect is not confirmed: nothing moves.
	w.change(t, "web1", events.StateUp, events.StateSuspect)
	time.Sleep(300 * time.Millisecond)
	if !l.is(t, "web1", haproxy.Ready) || len(w.actions(t, "web1")) > 0 {
		t.Fatalf("a suspect server was acted on: %+v, actions %v", l.server(t, "web1"), w.actions(t, "web1"))
	}

	down := w.change(t, "web1", events.StateSuspect, events.StateDown)
	wait.For(t, "web1 in maintenance", func() bool { return l.is(t, "web1", haproxy.Maint) })
	if got := l.h.Answers(t, 10); got["web2"] != 10 {
		t.Errorf("with web1 taken out the frontend was answered by %v, want web2 every time", got)
	}
	wait.For(t, "the removal announced", func() bool { return len(w.actions(t, "web1")) == 1 })
	a := w.actions(t, "web1")[0]
	if a.Action != events.ActionRemove || a.Outcome != events.OutcomeDone || a.Via != "haproxy" || a.Change != down.ID ||
		a.Incident != "20261121-web1" || a.Target != "haproxy "+l.h.Socket+" web/web1" || strings.Join(a.InPool, ",") != "web2" || a.Alert {
		t.Errorf("removal announced as %+v", a)
	}

	l.web1.restart(t)
	w.change(t, "web1", events.StateDown, events.StateUp)
	time.Sleep(500 * time.Millisecond)
	if !l.is(t, "web1", haproxy.Maint) {
		t.Errorf("web1 back in the pool within 500ms of recovering, want it kept out for recover_after (2s)")
	}
	wait.For(t, "web1 ready again", func() bool { return l.is(t, "web1", haproxy.Ready) })
	if got := l.h.Answers(t, 4); got["web1"] != 2 || got["web2"] != 2 {
		t.Errorf("after the recovery the frontend was answered by %v, want web1 and web2 twice each", got)
	}
	wait.For(t, "the restoration announced", func() bool { return len(w.actions(t, "web1")) == 2 })
	if got, want := summary(w.actions(t, "web1")), "remove haproxy done 1\nrestore haproxy done 1"; got != want {
		t.Errorf("actions:\n%s\nwant:\n%s", got, want)
	}
	if got := w.actions(t, "web2"); len(got) > 0 {
		t.Errorf("web2 was acted on: %v", summary(got))
	}
}

// TestLastServerStays: a server is never taken out when no other server
// of its box is up and in the pool; the removal is held until one is.
func TestLastServerStays(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web1", events.StateUnknown, events.StateUp)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)

	w.change(t, "web2", events.StateUp, events.StateSuspect)
	w.change(t, "web2", events.StateSuspect, events.StateDown)
	wait.For(t, "web2 in maintenance", func() bool { return l.is(t, "web2", haproxy.Maint) })

	// web1 fails too: it is the last in the pool, and stays.
	w.change(t, "web1", events.StateUp, events.StateSuspect)
	w.change(t, "web1", events.StateSuspect, events.StateDown)
	wait.For(t, "the hold announced", func() bool { return len(w.actions(t, "web1")) == 1 })
	if a := w.actions(t, "web1")[0]; a.Outcome != events.OutcomeHeld || a.Action != events.ActionRemove || len(a.InPool) > 0 {
		t.Errorf("web1's action: %+v, want a held removal", a)
	}
	time.Sleep(500 * time.Millisecond) // rechecks come and go
	if !l.is(t, "web1", haproxy.Ready) {
		t.Fatalf("the last server of the box was taken out: %+v", l.server(t, "web1"))
	}
	if got := summary(w.actions(t, "web1")); got != "remove  held 0" {
		t.Errorf("web1's actions while held:\n%s", got)
	}

	// web2 recovers and goes back in: web1, still down, can go out now.
	w.change(t, "web2", events.StateDown, events.StateUp)
	wait.For(t, "web2 ready", func() bool { return l.is(t, "web2", haproxy.Ready) })
	wait.For(t, "web1 in maintenance", func() bool { return l.is(t, "web1", haproxy.Maint) })
	if got := l.h.Answers(t, 4); got["web2"] != 4 {
		t.Errorf("the frontend was answered by %v, want web2 every time", got)
	}
	wait.For(t, "web1's removal announced", func() bool { return len(w.actions(t, "web1")) == 2 })
	if got, want := summary(w.actions(t, "web1")), "remove  held 0\nremove haproxy done 1"; got != want {
		t.Errorf("web1's actions:\n%s\nwant:\n%s", got, want)
	}
}

// TestPeerNotUpHolds: a peer the verifier has not
// judged up (not checked yet, in maintenance) cannot carry the box.
func TestPeerNotUpHolds(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web2", events.StateUp, events.StateMaintenance)
	w.run(t)
	w.change(t, "web1", events.StateSuspect, events.StateDown)
	wait.For(t, "the hold announced", func() bool { return len(w.actions(t, "web1")) == 1 })
	if !l.is(t, "web1", haproxy.Ready) || w.actions(t, "web1")[0].Outcome != events.OutcomeHeld {
		t.Errorf("web1 with its peer in maintenance: %+v, actions %s", l.server(t, "web1"), summary(w.actions(t, "web1")))
	}
}

// TestOperatorMaintenanceLeftAlone: a server an operator had put in
// maintenance is not failover's to put back.
func TestOperatorMaintenanceLeftAlone(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	if err := l.c.SetState(context.Background(), "web", "web1", haproxy.Maint); err != nil {
		t.Fatal(err)
	}
	w.run(t)
	w.change(t, "web1", events.StateSuspect, events.StateDown)
	wait.For(t, "web1 left as it is", func() bool { return len(w.actions(t, "web1")) == 1 })
	w.change(t, "web1", events.StateDown, events.StateUp)
	time.Sleep(500 * time.Millisecond)
	if !l.is(t, "web1", haproxy.Maint) {
		t.Errorf("failover put back a server an operator had in maintenance")
	}
	if got := summary(w.actions(t, "web1")); got != "remove haproxy left 0" {
		t.Errorf("actions:\n%s", got)
	}
}

// leftMidRemoval sets up what an instance that stopped while taking web1
// out leaves behind: web1 down since now, its failover record as left
// (made from web1's change to down), web1 in maintenance in HAProxy; then
// JetStream delivers the change to down again.
func (w *world) leftMidRemoval(t *testing.T, l *lb, left func(down events.Event, now time.Time) any) {
	t.Helper()
	now := time.Now().UTC()
	w.state(t, "web1", events.StateDown, now)
	c := &events.ServerStateChanged{Server: "web1", Box: "web", From: events.StateSuspect, To: events.StateDown, Since: now, Reason: "connection refused"}
	down := events.New(fmt.Sprintf("web1/state/2-%d", now.UnixMilli()), "verifier", now, c)
	if _, err := bus.PutJSON(context.Background(), w.st.records, "web1", left(down, now), 0); err != nil {
		t.Fatal(err)
	}
	if err := l.c.SetState(context.Background(), "web", "web1", haproxy.Maint); err != nil {
		t.Fatal(err)
	}
	if err := w.b.Publish(context.Background(), down); err != nil {
		t.Fatal(err)
	}
}

// TestRestartFinishesRemoval: failover stopped after it set HAProxy but
// before it recorded the removal done. The next instance finishes it, and
// knows the maintenance is its own to undo.
func TestRestartFinishesRemoval(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	// What the stopped instance left: its intent, and HAProxy acted on.
	w.leftMidRemoval(t, l, func(down events.Event, now time.Time) any {
		return record{Server: "web1", Box: "web", Change: down.ID, Since: now, State: events.StateDown,
			Places: map[string]*place{"haproxy-1": {At: placeRemoving}}}
	})
	w.run(t)
	wait.For(t, "the removal finished", func() bool { return len(w.actions(t, "web1")) == 1 })
	if got := summary(w.actions(t, "web1")); got != "remove haproxy done 1" {
		t.Errorf("actions:\n%s", got)
	}
	w.seq["web1"] = 2
	w.change(t, "web1", events.StateDown, events.StateUp)
	wait.For(t, "web1 ready", func() bool { return l.is(t, "web1", haproxy.Ready) })
}

// TestHAProxyUnreachable: an HAProxy that cannot be reached while failover
// looks for another server to carry the box fails the removal as any
// failed action does: announced, with staff asked to act from the third
// attempt, and tried again until HAProxy answers.
func TestHAProxyUnreachable(t *testing.T) {
	l := startLB(t)
	// The configured socket is not there yet; it appears, a link to the
	// running HAProxy's, once the failures have been heard.
	socket := filepath.Join(t.TempDir(), "admin.sock")
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web, timeout: 1s}]}`, socket), nil)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)
	w.change(t, "web1", events.StateSuspect, events.StateDown)

	wait.For(t, "three failures announced", func() bool { return len(w.actions(t, "web1")) >= 3 })
	for i, a := range w.actions(t, "web1")[:3] {
		if a.Action != events.ActionRemove || a.Via != "haproxy" || a.Outcome != events.OutcomeRetrying || a.Attempt != i+1 ||
			a.Alert != (i == 2) || a.Error == "" || a.FailingSince.IsZero() || a.Target != "haproxy "+socket+" web/web1" {
			t.Errorf("failure %d announced as %+v: want a retried removal with the error, since when, and an alert from the third", i+1, a)
		}
	}
	if !l.is(t, "web1", haproxy.Ready) {
		t.Fatalf("web1 taken out while failover could not reach HAProxy: %+v", l.server(t, "web1"))
	}

	if err := os.Symlink(l.h.Socket, socket); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "web1 in maintenance", func() bool { return l.is(t, "web1", haproxy.Maint) })
	var as []events.ServerAction
	wait.For(t, "the removal announced done", func() bool {
		as = w.actions(t, "web1")
		return as[len(as)-1].Outcome == events.OutcomeDone
	})
	last := as[len(as)-1]
	for _, a := range as[:len(as)-1] {
		if a.Outcome != events.OutcomeRetrying || a.Attempt >= last.Attempt {
			t.Errorf("actions:\n%s\nwant failures, then the removal done at the attempt after the last", summary(as))
			break
		}
	}
	if strings.Join(last.InPool, ",") != "web2" || last.Alert {
		t.Errorf("removal announced as %+v", last)
	}
}

// TestHAProxyUnknownBackend: a box configured with a backend its HAProxy
// does not know cannot be failed over until the configuration is fixed:
// staff are told at once, and the change is set aside.
func TestHAProxyUnknownBackend(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: webs}]}`, l.h.Socket), nil)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)
	w.change(t, "web1", events.StateSuspect, events.StateDown)

	wait.For(t, "the failure announced", func() bool { return len(w.actions(t, "web1")) == 1 })
	a := w.actions(t, "web1")[0]
	if a.Action != events.ActionRemove || a.Via != "haproxy" || a.Outcome != events.OutcomeFailed || !a.Alert ||
		!strings.Contains(a.Error, "Can't find backend") || a.Target != "haproxy "+l.h.Socket+" webs/web1" {
		t.Errorf("failure announced as %+v: want a removal failed for good, with HAProxy's answer, and an alert", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wait.For(t, "the change set aside", func() bool {
		stream, err := w.b.JS.Stream(ctx, events.StreamDeadLetters)
		if err != nil {
			t.Fatal(err)
		}
		_, err = stream.GetLastMsgForSubject(ctx, events.SubjectDeadLetter("failover"))
		return err == nil
	})
	time.Sleep(300 * time.Millisecond)
	if got := summary(w.actions(t, "web1")); got != "remove haproxy failed 1" {
		t.Errorf("actions:\n%s\nwant one failure: a refusal is not tried again", got)
	}
}

func TestNewer(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC)
	tests := []struct {
		name     string
		id       string
		since    time.Time
		recID    string
		recSince time.Time
		want     bool
	}{
		{"first", "web1/state/1-1", t0, "", time.Time{}, true},
		{"later", "web1/state/5-2", t0.Add(time.Second), "web1/state/4-1", t0, true},
		{"earlier", "web1/state/3-1", t0.Add(-time.Second), "web1/state/4-1", t0, false},
		{"same time, next number", "web1/state/5-1", t0, "web1/state/4-1", t0, true},
		{"same time, earlier number", "web1/state/3-1", t0, "web1/state/4-1", t0, false},
		{"later, numbers begun again", "web1/state/1-9", t0.Add(time.Hour), "web1/state/40-1", t0, true},
		{"same time, ids not the verifier's", "x", t0, "y", t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newer(tt.id, tt.since, tt.recID, tt.recSince); got != tt.want {
				t.Errorf("newer = %v, want %v", got, tt.want)
			}
		})
	}
}
