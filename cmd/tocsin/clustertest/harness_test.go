package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Secrets the processes find in their environment, as in production.
const (
	smtpPassword = "cluster-smtp-pa55"
	twilioSID    = "AC0123456789abcdef0123456789abcdef"
	twilioToken  = "clustertoken0123456789"
	linkKey      = "cluster-link-key-0123456789abcdef"
)

// Staff: Alice is paged by SMS and email, Bob by email only.
const (
	alicePhone = "+447700900001"
	aliceEmail = "alice@example.net"
	bobEmail   = "bob@example.net"
)

// port is a loopback TCP port that a server of the fleet "listens" on: a
// check of it passes while it is open and is refused once it is closed.
type port struct {
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

// openPorts opens n ports for the fleet, below the ephemeral range so
// that a closed one is still free to reopen.
func openPorts(t *testing.T, n int) []*port {
	t.Helper()
	var ps []*port
	for _, ln := range listenPorts(t, n) {
		p := &port{addr: ln.Addr().String()}
		p.serve(ln)
		t.Cleanup(p.close)
		ps = append(ps, p)
	}
	return ps
}

func (p *port) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	var ln net.Listener
	var err error
	// The kernel may hold the port a moment after a close.
	wait.Until(context.Background(), time.Second, func() bool {
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	if err != nil {
		return fmt.Errorf("reopen %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// serve accepts connections on ln and closes them at once: a check that
// connects succeeds.
func (p *port) serve(ln net.Listener) {
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (p *port) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

func (p *port) check() string { return "tcp://" + p.addr }

// fleetServer is one server of the generated config.
type fleetServer struct {
	id, box, dc string
	port        *port
}

// fleet is the servers of a test's config, grouped into boxes and
// datacentres.
type fleet struct {
	servers []*fleetServer
	dcs     []string
}

// newFleet makes boxes of perBox servers each, dealt round the datacentres
// in turn, every server on a port of its own.
func newFleet(t *testing.T, boxes, perBox int, dcs []string) *fleet {
	t.Helper()
	f := &fleet{dcs: dcs}
	ports := openPorts(t, boxes*perBox)
	for b := range boxes {
		for s := range perBox {
			p := ports[b*perBox+s]
			f.servers = append(f.servers, &fleetServer{
				id: fmt.Sprintf("s%04d", b*perBox+s+1), box: fmt.Sprintf("b%03d", b+1), dc: dcs[b%len(dcs)], port: p,
			})
		}
	}
	return f
}

// yaml is the datacentres and boxes sections of the config.
func (f *fleet) yaml() string {
	var w strings.Builder
	w.WriteString("datacentres:\n")
	for _, dc := range f.dcs {
		fmt.Fprintf(&w, "  %s: {name: \"Datacentre %s\", email: noc@%s.example}\n", dc, dc, dc)
	}
	w.WriteString("boxes:\n")
	for i, s := range f.servers {
		if i == 0 || f.servers[i-1].box != s.box {
			fmt.Fprintf(&w, "  - id: %s\n    name: Box %s\n    role: web\n    datacentre: %s\n    servers:\n", s.box, s.box, s.dc)
		}
		fmt.Fprintf(&w, "      - {id: %s, check: %q}\n", s.id, s.port.check())
	}
	return w.String()
}

// harness is a whole Tocsin deployment: the cluster, the SMTP server and
// the Twilio stand-in, and each service as a process of its own.
type harness struct {
	t        *testing.T
	bin      binaries
	dir      string
	cluster  *cluster
	js       jetstream.JetStream
	mail     *smtpserver.Server
	sms      *twilioapi.Server
	config   string
	pageAddr string
	env      []string
	procs    map[string]*proc
	watch    *watcher
	ackWait  string
}

// settings are the parts of the config a test chooses.
type settings struct {
	interval, timeout string
	groupWindow       string // incidents.group_window
	// ackWait, if set, is tocsin run's --ack-wait: how long a killed
	// service holds up the events it had, and also how long a handler may
	// take, waits on a stream without a leader included.
	ackWait string
	// people, if set, stands for the staff section (and whatever else
	// says who is paged: oncall); notify for the notify section's
	// settings. Unset, Alice and Bob, and short windows.
	people, notify string
	// extra is more top-level sections of the config, as YAML.
	extra string
}

func newHarness(t *testing.T, f *fleet, s settings) *harness {
	t.Helper()
	bin := build(t)
	dir := t.TempDir()
	t.Logf("logs and stores in %s", dir)
	h := &harness{t: t, bin: bin, dir: dir, procs: map[string]*proc{}, ackWait: s.ackWait}
	h.mail = smtpserver.Start(t, smtpserver.Options{Username: "alerts", Password: smtpPassword, TLS: true, RequireTLS: true})
	h.sms = twilioapi.Start(t, twilioSID, twilioToken)
	if err := os.WriteFile(filepath.Join(dir, "smtp-ca.pem"), h.mail.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	h.pageAddr = fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	h.config = filepath.Join(dir, "tocsin.yaml")
	// Short notify windows: the notifier holds each update unacknowledged
	// until its digest is due, and a thousand held at once would stop its
	// consumer (MaxAckPending) until then, resolutions included.
	if s.people == "" {
		s.people = fmt.Sprintf("staff:\n  - {name: Alice, email: %s, phone: %q}\n  - {name: Bob, email: %s}\n", aliceEmail, alicePhone, bobEmail)
	}
	if s.notify == "" {
		s.notify = "group_window: 2s, update_every: 5s, repeat_every: 1h"
	}
	cfg := fmt.Sprintf(`site: {name: Example Hosting, status_url: https://status.example.net}
checks: {interval: %s, timeout: %s, verify: {locations: 2, quorum: 2}, recover_after: 2}
locations: [lon1, ams1, nyc1]
roles: {web: {label: Web Service, colour: "#27ae60"}}
%s%sincidents: {group_window: %s}
notify: {%s}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: "Tocsin <alerts@example.net>", username: alerts, password_env: TOCSIN_SMTP_PASSWORD, tls: starttls, ca_file: smtp-ca.pem}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_ACCOUNT_SID, auth_token_env: TWILIO_AUTH_TOKEN, api_url: %q}
statuspage: {listen: %q}
%s`, s.interval, s.timeout, f.yaml(), s.people, s.groupWindow, s.notify, h.mail.Port, h.sms.URL, h.pageAddr, s.extra)
	if err := os.WriteFile(h.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env = []string{"TOCSIN_SMTP_PASSWORD=" + smtpPassword, "TWILIO_ACCOUNT_SID=" + twilioSID, "TWILIO_AUTH_TOKEN=" + twilioToken,
		"TOCSIN_LINK_KEY=" + linkKey}
	h.validate()
	h.cluster = startCluster(t, bin, dir)
	_, h.js = h.cluster.connect()
	t.Cleanup(func() {
		if t.Failed() {
			h.logConsumers()
		}
	})
	return h
}

// validate runs "tocsin validate" on the config, as an operator would first.
func (h *harness) validate() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin.tocsin, "validate", "--config", h.config)
	cmd.Env = append(os.Environ(), h.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("tocsin validate: %v\n%s", err, out)
	}
}

// services are the processes of a deployment: every prober location in
// one process, and each other service alone.
var serviceProcs = []struct{ name, services string }{
	{"verifier", "verifier"},
	{"prober", "prober"},
	{"notifier", "notifier"},
	{"escalator", "escalator"},
	{"statuspage", "statuspage"},
}

// startServices starts every service against the cluster. The first makes
// the streams with three replicas; the others start once it has, so that
// they find them rather than race to create them.
func (h *harness) startServices() {
	h.t.Helper()
	for i, s := range serviceProcs {
		args := []string{"run", "--config", h.config, "--nats", h.cluster.URLs(), "--replicas", "3",
			"--services", s.services, "--take-over", "2s", "--shutdown-timeout", "5s",
			"--data", filepath.Join(h.dir, s.name+"-data"), // the status page keeps its last state there
			"--admin-listen", "127.0.0.1:0"} // processes side by side: an admin port each
		if h.ackWait != "" {
			args = append(args, "--ack-wait", h.ackWait)
		}
		if s.name == "prober" {
			args = append(args, "--location", "lon1,ams1,nyc1")
		}
		p := newProc(h.t, h.dir, s.name, h.bin.tocsin, h.env, args...)
		h.procs[s.name] = p
		p.start()
		if i == 0 {
			p.waitLog("tocsin running", 60*time.Second)
		}
	}
	for _, s := range serviceProcs {
		h.procs[s.name].waitLog("tocsin running", 60*time.Second)
	}
	h.watch = watchIncidents(h.t, h.js)
}

// serverStates reads every server's state from the verifier's bucket.
func (h *harness) serverStates(ctx context.Context) (map[string]events.ServerState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := h.js.KeyValue(ctx, events.BucketServers)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	states := map[string]events.ServerState{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				return states, nil
			}
			var rec struct {
				State events.ServerState `json:"state"`
			}
			if err := jsonUnmarshal(e.Value(), &rec); err != nil {
				return nil, fmt.Errorf("server %s: %w", e.Key(), err)
			}
			states[e.Key()] = rec.State
		case <-ctx.Done():
			return nil, fmt.Errorf("read the servers bucket: %w", ctx.Err())
		}
	}
}

// waitStates waits until every server in ids is in state want.
func (h *harness) waitStates(ids []string, want events.ServerState, within time.Duration) {
	h.t.Helper()
	var missing []string
	// Reading a thousand records is load on the cluster: a look a second.
	if wait.Until(context.Background(), within, wait.Spaced(time.Second, func() bool {
		states, err := h.serverStates(context.Background())
		if err != nil {
			return false
		}
		missing = missing[:0]
		for _, id := range ids {
			if states[id] != want {
				missing = append(missing, id+"="+string(states[id]))
			}
		}
		return len(missing) == 0
	})) {
		return
	}
	n := len(missing)
	if n > 10 {
		missing = append(missing[:10], fmt.Sprintf("and %d more", n-10))
	}
	h.t.Fatalf("after %v, %d servers not %s: %v", within, n, want, missing)
}

// logConsumers says where each durable consumer of the events and results
// streams stands, for a failing test: what waits, what is held unacknowledged.
func (h *harness) logConsumers() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stream := range []string{events.StreamEvents, events.StreamResults} {
		s, err := h.js.Stream(ctx, stream)
		if err != nil {
			h.t.Logf("stream %s: %v", stream, err)
			continue
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			h.t.Logf("consumer %s on %s: %d waiting, %d unacknowledged (limit %d), %d redelivered, leader %v",
				ci.Name, stream, ci.NumPending, ci.NumAckPending, ci.Config.MaxAckPending, ci.NumRedelivered, ci.Cluster)
		}
		if err := l.Err(); err != nil {
			h.t.Logf("consumers of %s: %v", stream, err)
		}
	}
}

// settled waits until the verifier has judged a result stored after the
// call, and the notifier has been given every incident event: an event
// that the judgement would send twice has reached the notifier by then.
// (The notifier holds an incident's events back for its next step, even
// once resolved, so its consumer is never idle, and a held event that was
// once given again stays counted as redelivered.)
func (h *harness) settled(within time.Duration) {
	h.t.Helper()
	info := h.consumer
	var last uint64
	wait.Within(h.t, within, "the results stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := h.js.Stream(ctx, events.StreamResults)
		if err != nil {
			return false
		}
		si, err := s.Info(ctx)
		if err != nil {
			return false
		}
		last = si.State.LastSeq
		return true
	})
	wait.Within(h.t, within, "the verifier to judge a result stored since", wait.Spaced(100*time.Millisecond, func() bool {
		ci := info(events.StreamResults, "verifier")
		return ci != nil && ci.AckFloor.Stream > last
	}))
	wait.Within(h.t, within, "the notifier to be given every incident event", wait.Spaced(100*time.Millisecond, func() bool {
		ci := info(events.StreamEvents, "notifier")
		return ci != nil && ci.NumPending == 0
	}))
}

// consumer is a consumer's info, nil when it cannot be read now.
func (h *harness) consumer(stream, consumer string) *jetstream.ConsumerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := h.js.Consumer(ctx, stream, consumer)
	if err != nil {
		return nil
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return nil
	}
	return ci
}
