package prober

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestForgedTasks: whoever can publish a task names a server and nothing
// more. A task carrying another URL, a long timeout and the FTP login's
// username makes the prober check the configured server, within the
// configured timeout, and never reach the URL it named, nor send it the
// password; a task for a server the config does not have is set aside.
func TestForgedTasks(t *testing.T) {
	var hits atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer attacker.Close()
	ftp, err := net.Listen("tcp", "127.0.0.1:0") // the configured server: a banner, then it hears what is sent
	if err != nil {
		t.Fatal(err)
	}
	defer ftp.Close()
	heard := make(chan string, 16)
	go func() {
		for {
			c, err := ftp.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, "220 ftp1 ready\r\n")
				buf := make([]byte, 512)
				n, _ := c.Read(buf)
				heard <- string(buf[:n])
				io.WriteString(c, "530 no\r\n")
			}()
		}
	}()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1h, timeout: 2s}
boxes:
  - {id: ftp, name: FTP, servers: [{id: ftp1, check: "ftp://`+ftp.Addr().String()+`", login: {username: deploy, password_env: FTP_PW}}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}
`), func(k string) (string, bool) { return "s3cret-pw", k == "FTP_PW" })
	if err != nil {
		t.Fatal(err)
	}
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	p, err := New(cfg, Options{Location: "lon1", Concurrency: 4}, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now().UTC()
	for _, task := range []*events.ProbeTask{
		{Server: "ftp1", Location: "lon1", Check: attacker.URL + "/steal", TimeoutMS: 3_600_000, Due: now, Purpose: events.PurposeOnDemand,
			Options: &events.CheckOptions{Username: "deploy"}},
		{Server: "ghost", Location: "lon1", Check: attacker.URL + "/ghost", TimeoutMS: 1000, Due: now, Purpose: events.PurposeOnDemand},
	} {
		if err := b.Publish(ctx, events.New("forged/"+task.Server, "nobody", now, task)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectProbeResultsOf("ftp1")}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatalf("no result for ftp1: %v", err)
	}
	ev, err := events.Decode(m.Subject(), m.Data())
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Data.(*events.ProbeResult)
	if r.Check != "ftp://"+ftp.Addr().String() || r.LatencyMS > 2500 {
		t.Errorf("the result checked %q in %.0fms: want the configured server within its 2s timeout", r.Check, r.LatencyMS)
	}
	if got := <-heard; !strings.HasPrefix(got, "USER deploy") {
		t.Errorf("the configured server heard %q", got)
	}
	dl, err := b.JS.OrderedConsumer(ctx, events.StreamDeadLetters, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := dl.Next(jetstream.FetchMaxWait(10 * time.Second)); err != nil {
		t.Errorf("the task for a server not in the config was not set aside: %v", err)
	} else if reason := m.Headers().Get(events.HeaderDeadReason); !strings.Contains(reason, `a task for "ghost"`) {
		t.Errorf("set aside with reason %q", reason)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the prober fetched the task's own URL %d times", n)
	}
}
