package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The providers' stand-ins and the secrets they expect, for the tests of
// what reaches whom and in which order.
const (
	truthSID   = "AC00112233445566778899aabbccddeeff"
	truthToken = "truthT0ken"
	truthFB    = "pageTOKENtruth"
	alicePhone = "+447700900001"
	bobPhone   = "+447700900002"
)

var truthX = xapi.Credentials{ConsumerKey: "ck9", ConsumerSecret: "cs9secret", Token: "tk9", TokenSecret: "ts9secret"}

// providers is everything outside Tocsin that hears from it: the mail
// server (staff and the datacentre), Twilio, X and Facebook.
type providers struct {
	mail *smtpserver.Server
	sms  *twilioapi.Server
	x    *xapi.Server
	fb   *graphapi.Server
}

func startProviders(t *testing.T) *providers {
	return &providers{
		mail: smtpserver.Start(t, smtpserver.Options{}),
		sms:  twilioapi.Start(t, truthSID, truthToken),
		x:    xapi.Start(t, truthX),
		fb:   graphapi.Start(t, "777", truthFB),
	}
}

// yaml is the providers section of a config that reaches the stand-ins.
func (p *providers) yaml() string {
	return fmt.Sprintf(`providers:
  smtp: {host: 127.0.0.1, port: %d, from: "Tocsin <alerts@example.net>", tls: none}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_SID, auth_token_env: TWILIO_TOKEN, api_url: %q}
  x: {consumer_key_env: X_CK, consumer_secret_env: X_CS, token_env: X_TK, token_secret_env: X_TS, api_url: %q}
  facebook: {page_id: "777", token_env: FB_TOKEN, api_url: %q}
`, p.mail.Port, p.sms.URL, p.x.URL, p.fb.URL)
}

func providerEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"TWILIO_SID": truthSID, "TWILIO_TOKEN": truthToken, "FB_TOKEN": truthFB,
		"X_CK": truthX.ConsumerKey, "X_CS": truthX.ConsumerSecret, "X_TK": truthX.Token, "X_TS": truthX.TokenSecret,
	}[name]
	return v, ok
}

// smsTo is the SMS one phone received, in order.
func smsTo(s *twilioapi.Server, phone string) []twilioapi.Message {
	var out []twilioapi.Message
	for _, m := range s.Messages() {
		if m.To == phone {
			out = append(out, m)
		}
	}
	return out
}

// stateOf reads a server's state as the verifier keeps it.
func stateOf(t *testing.T, kv jetstream.KeyValue, id string) events.ServerState {
	t.Helper()
	var rec struct {
		State events.ServerState `json:"state"`
	}
	if _, err := bus.GetJSON(context.Background(), kv, id, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.State
}

// TestWorseNewsBeforeThePublic is the night the alarm exists for: mx1
// stops, and both phones hear the service still answers; then mx2 stops
// too. Each phone hears at once that Incoming mail is now down, before any
// post to X or Facebook, which come social_after after the box went down,
// not after mx1 did. The resolution says how long customers were affected.
func TestWorseNewsBeforeThePublic(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	mx1, err := newLoopbackServer("mx1", "220 mx1 ESMTP")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mx1.Off)
	mx2, err := newLoopbackServer("mx2", "220 mx2 ESMTP")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mx2.Off)
	pr := startProviders(t)
	nats := bustest.Start(t)

	const socialAfter = 6 * time.Second
	cfgFile := writeConfig(t, fmt.Sprintf(`
site: {name: Example Hosting, status_url: https://status.example.net}
checks: {interval: 1s, timeout: 500ms, recover_after: 2, verify: {locations: 1, quorum: 1}}
locations: [lon1]
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - id: mx
    name: Incoming mail
    datacentre: dc1
    servers: [{id: mx1, check: "%s"}, {id: mx2, check: "%s"}]
staff:
  - {name: Alice, email: alice@example.net, phone: %q}
  - {name: Bob, email: bob@example.net, phone: %q}
notify: {group_window: 1m, update_every: 10m}
escalation: {datacentre_after: 1s, social_after: %s}
%s`, mx1.Check(), mx2.Check(), alicePhone, bobPhone, socialAfter, pr.yaml()))
	p := startProcessWith(t, providerEnv, "run", "--config", cfgFile, "--nats", nats.URL, "--services", "prober,verifier,notifier,escalator", "--shutdown-timeout", "10s")
	defer func() {
		if t.Failed() {
			t.Logf("tocsin log:\n%s", p.log.String())
		}
	}()
	watch := nats.Connect(t, nil)
	servers, err := watch.KV(context.Background(), events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 30*time.Second, "both servers seen up", func() bool {
		return stateOf(t, servers, "mx1") == events.StateUp && stateOf(t, servers, "mx2") == events.StateUp
	})

	mx1.Off()
	wait.Within(t, 30*time.Second, "the first page on both phones", func() bool {
		return len(smsTo(pr.sms, alicePhone)) == 1 && len(smsTo(pr.sms, bobPhone)) == 1
	})
	for _, m := range pr.sms.Messages() {
		if !strings.HasPrefix(m.Body, "DOWN ") || !strings.Contains(m.Body, "DEGRADED: service still available") {
			t.Errorf("first SMS %q: want DOWN, the service still available", m.Body)
		}
	}
	// The datacentre hears of it once staff were paged: its email is the
	// moment to take the second server away, the public not yet told.
	wait.Within(t, 30*time.Second, "the datacentre's ticket", func() bool {
		for _, m := range pr.mail.Messages() {
			if m.To[0] == "noc@dc1.example" {
				return true
			}
		}
		return false
	})
	if n := len(pr.x.Posts()) + len(pr.fb.Posts()); n != 0 {
		t.Fatalf("%d public posts while the box still serves", n)
	}

	boxDown := time.Now()
	mx2.Off()
	wait.Within(t, 30*time.Second, "NOW DOWN on both phones", func() bool {
		return len(smsTo(pr.sms, alicePhone)) == 2 && len(smsTo(pr.sms, bobPhone)) == 2
	})
	var lastPage time.Time
	for _, phone := range []string{alicePhone, bobPhone} {
		m := smsTo(pr.sms, phone)[1]
		if !strings.HasPrefix(m.Body, "NOW DOWN: Incoming mail - no server answers") || strings.Contains(m.Body, "still available") {
			t.Errorf("second SMS to %s: %q", phone, m.Body)
		}
		t.Logf("NOW DOWN reached %s %s after mx2 stopped", phone, m.Received.Sub(boxDown).Round(100*time.Millisecond))
		if m.Received.After(lastPage) {
			lastPage = m.Received
		}
	}
	if n := len(pr.x.Posts()) + len(pr.fb.Posts()); n != 0 {
		t.Errorf("%d public posts before both phones heard the box was down", n)
	}

	wait.Within(t, 30*time.Second, "the posts to X and Facebook", func() bool { return len(pr.x.Posts()) == 1 && len(pr.fb.Posts()) == 1 })
	for _, at := range []time.Time{pr.x.Posts()[0].Received, pr.fb.Posts()[0].Received} {
		if at.Before(lastPage) {
			t.Errorf("posted at %s, before the last page at %s", at.Format(time.StampMilli), lastPage.Format(time.StampMilli))
		}
		if at.Before(boxDown.Add(socialAfter)) {
			t.Errorf("posted %s after the box went down: the public clock must run social_after (%s) from then", at.Sub(boxDown).Round(100*time.Millisecond), socialAfter)
		}
	}

	if err := mx1.On(); err != nil {
		t.Fatal(err)
	}
	if err := mx2.On(); err != nil {
		t.Fatal(err)
	}
	wait.Within(t, 30*time.Second, "the resolution on both phones", func() bool {
		return len(smsTo(pr.sms, alicePhone)) == 3 && len(smsTo(pr.sms, bobPhone)) == 3
	})
	for _, phone := range []string{alicePhone, bobPhone} {
		if m := smsTo(pr.sms, phone)[2]; !strings.HasPrefix(m.Body, "RESOLVED ") || !strings.Contains(m.Body, "customers were affected for") {
			t.Errorf("resolution to %s: %q", phone, m.Body)
		}
	}
	var resolution string
	for _, m := range pr.mail.Messages() {
		if m.To[0] == "alice@example.net" && strings.Contains(m.Subject, "RESOLVED:") {
			resolution = m.Text
		}
	}
	for _, want := range []string{"Severity:       outage", "Customers:      customers were affected for", "Servers down for:"} {
		if !strings.Contains(resolution, want) {
			t.Errorf("the resolution email lacks %q:\n%s", want, resolution)
		}
	}
}

// startHTTPS serves a page over TLS on loopback with a certificate of ca's
// that expires in a day.
func startHTTPS(t *testing.T, ca *testCA) string {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "web.pem"), filepath.Join(dir, "web-key.pem")
	ca.issue(t, "web1", certFile, keyFile)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<h1>web1</h1>") })}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String() + "/"
}

// haproxyState is how HAProxy's runtime API reports a server of a backend:
// the line of "show stat" that names it.
func haproxyState(t *testing.T, socket, backend, server string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, backend+","+server+",") {
			return line
		}
	}
	t.Fatalf("HAProxy does not know %s/%s:\n%s", backend, server, out)
	return ""
}

// TestCertificateWarning: a certificate in its warning window is a
// warning: one email to each person, no SMS, the server up on the page
// and in its HAProxy pool, nothing public.
func TestCertificateWarning(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	ca := newTestCA(t, "Fleet CA")
	dir := t.TempDir()
	ca.writeCert(t, filepath.Join(dir, "fleet-ca.pem"))
	web1 := startHTTPS(t, ca)
	web2, err := newLoopbackServer("web2", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web2.Off)
	lb := servertest.StartHAProxy(t, servertest.HAProxyOptions{Backend: "web", Servers: []servertest.HAProxyServer{
		{Name: "web1", Addr: strings.TrimSuffix(strings.TrimPrefix(web1, "https://"), "/")}, {Name: "web2", Addr: web2.Addr()},
	}})
	pr := startProviders(t)
	nats := bustest.Start(t)
	page := freeAddr(t)

	cfgFile := writeConfigIn(t, dir, fmt.Sprintf(`
site: {name: Example Hosting, status_url: https://status.example.net}
checks: {interval: 2s, timeout: 1800ms, recover_after: 2, verify: {locations: 1, quorum: 1}, ca_file: fleet-ca.pem}
locations: [lon1]
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - id: web
    name: Websites
    datacentre: dc1
    failover: {haproxy: [{address: %q, backend: web}]}
    servers:
      - {id: web1, check: %q, cert_warn_days: 7, public_name: Web 1}
      - {id: web2, check: %q, public_name: Web 2}
staff:
  - {name: Alice, email: alice@example.net, phone: %q}
  - {name: Bob, email: bob@example.net, phone: %q}
escalation: {datacentre_after: 1s, social_after: 1s}
statuspage: {listen: %q}
%s`, lb.Socket, web1, web2.Check(), alicePhone, bobPhone, page, pr.yaml()))
	p := startProcessWith(t, providerEnv, "run", "--config", cfgFile, "--nats", nats.URL,
		"--services", "prober,verifier,notifier,escalator,failover,statuspage", "--shutdown-timeout", "10s", "--data", t.TempDir())
	defer func() {
		if t.Failed() {
			t.Logf("tocsin log:\n%s", p.log.String())
		}
	}()
	warnings := func(to string) int {
		n := 0
		for _, m := range pr.mail.Messages() {
			if m.To[0] == to && strings.Contains(m.Subject, "] WARNING:") {
				n++
			}
		}
		return n
	}
	wait.Within(t, 30*time.Second, "the warning emails", func() bool { return warnings("alice@example.net") == 1 && warnings("bob@example.net") == 1 })
	for _, m := range pr.mail.Messages() {
		if !strings.Contains(m.Subject, "web1 (Websites): certificate expires in") || !strings.Contains(m.Text, "Every server still works") {
			t.Errorf("warning email %q:\n%s", m.Subject, m.Text)
		}
	}

	// Several checks later, each seeing the warning again: still one
	// email each, no SMS, nothing to the datacentre or the public.
	watch := nats.Connect(t, nil)
	servers, err := watch.KV(context.Background(), events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	results, err := watch.JS.OrderedConsumer(context.Background(), events.StreamResults, jetstream.OrderedConsumerConfig{
		// A success with a warning comes in a batch of its location's.
		FilterSubjects: []string{events.SubjectProbeResultsOf("web1"), events.SubjectProbeResultBatch("*")}, DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; {
		m, err := results.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			t.Fatalf("check %d of web1 after the warning: %v", i+1, err)
		}
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		if err != nil {
			t.Fatalf("a check of web1 after the warning: %v", err)
		}
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			if r.Server != "web1" || r.Unanswered {
				continue // another server's in a batch, or a slow handshake on a loaded machine: its result follows
			}
			if !strings.Contains(r.Warning, "certificate expires in") {
				t.Fatalf("a check of web1 after the warning: %+v", r)
			}
			i++
		}
	}
	// Then the verifier has judged them once nothing of the results is
	// pending or unacknowledged for it.
	wait.Within(t, 30*time.Second, "the results judged", func() bool {
		info, err := watch.JS.Consumer(context.Background(), events.StreamResults, "verifier")
		if err != nil {
			return false
		}
		ci, err := info.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if got := stateOf(t, servers, "web1"); got != events.StateUp {
		t.Errorf("web1 is %s, want up: a certificate about to expire still works", got)
	}
	if n := len(pr.sms.Messages()); n != 0 {
		t.Errorf("%d SMS for a warning", n)
	}
	if a, b := warnings("alice@example.net"), warnings("bob@example.net"); a != 1 || b != 1 || len(pr.mail.Messages()) != 2 {
		t.Errorf("%d and %d warnings, %d emails in all: want one warning each and nothing else", a, b, len(pr.mail.Messages()))
	}
	if n := len(pr.x.Posts()) + len(pr.fb.Posts()); n != 0 {
		t.Errorf("%d public posts for a warning", n)
	}
	if line := haproxyState(t, lb.Socket, "web", "web1"); strings.Contains(line, "MAINT") {
		t.Errorf("web1 was taken out of its pool: %s", line)
	}
	code, body := httpGet(t, "http://"+page+"/api/v2/components.json")
	if code != http.StatusOK || !strings.Contains(body, `"name":"Web 1","status":"operational"`) {
		t.Errorf("the page's components (%d): %s", code, body)
	}
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
