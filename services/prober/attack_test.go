package prober

import (
	"bufio"
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

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/tcptest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestForgedTasks: whoever can publish a task names a server and nothing
// more. A task carrying another URL, an hour's timeout and the FTP login's
// username makes the prober check the configured server, within the
// configured timeout even when that server hangs, and never reach the URL
// it named, nor send it the password; a task with a 1ms timeout does not
// make a healthy server fail; a task for a server the config does not have
// is set aside.
func TestForgedTasks(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer attacker.Close()
	// ftp1, the configured server: a banner, then it hears what is sent and
	// answers nothing more, until the prober gives up or the test ends.
	heard := make(chan string, 16)
	hung := tcptest.Serve(t, func(c net.Conn) {
		io.WriteString(c, "220 ftp1 ready\r\n")
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		heard <- string(buf[:n])
		io.Copy(io.Discard, c) // until the prober hangs up
	})
	// ftp2, healthy but not instant: its banner comes 50ms after the
	// connection, as a loaded server's may (a pause the server takes, not a
	// wait of the test's).
	healthy := tcptest.Serve(t, func(c net.Conn) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(c, "220 ftp2 ready\r\n")
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "221 bye\r\n")
	})
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Test}
locations: [lon1]
checks: {interval: 1h, timeout: 2s}
boxes:
  - {id: ftp, name: FTP, servers: [{id: ftp1, check: "ftp://`+hung+`", login: {username: deploy, password_env: FTP_PW}}]}
  - {id: ftpb, name: FTP B, servers: [{id: ftp2, check: "ftp://`+healthy+`"}]}
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
		{Server: "ftp2", Location: "lon1", Check: "ftp://" + healthy, TimeoutMS: 1, Due: now, Purpose: events.PurposeOnDemand},
		{Server: "ghost", Location: "lon1", Check: attacker.URL + "/ghost", TimeoutMS: 1000, Due: now, Purpose: events.PurposeOnDemand},
	} {
		if err := b.Publish(ctx, events.New("forged/"+task.Server, "nobody", now, task)); err != nil {
			t.Fatal(err)
		}
	}
	r := nextResult(ctx, t, b, "ftp1")
	if r.Check != "ftp://"+hung || r.OK || r.LatencyMS > 2000+3000 {
		t.Errorf("the result checked %q in %.0fms, ok=%v: want a failed check of the configured server within its 2s timeout (+3s margin)", r.Check, r.LatencyMS, r.OK)
	}
	select {
	case got := <-heard:
		if !strings.HasPrefix(got, "USER deploy") {
			t.Errorf("the configured server heard %q", got)
		}
	case <-time.After(wait.Default):
		t.Errorf("the configured server heard nothing in %s", wait.Default)
	}
	if r := nextResult(ctx, t, b, "ftp2"); !r.OK {
		t.Errorf("a task with a 1ms timeout failed a healthy server: %q", r.Reason)
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

// nextResult is the next result for server, within 20s: a check that
// outlives its configured 2s timeout fails the test rather than hanging it.
// A success may come in a batch of its location's.
func nextResult(ctx context.Context, t *testing.T, b *bus.Bus, server string) *events.ProbeResult {
	t.Helper()
	c, err := b.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectProbeResultsOf(server), events.SubjectProbeResultBatch("*")}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := c.Next(jetstream.FetchMaxWait(time.Until(deadline)))
		if err != nil {
			t.Fatalf("no result for %s in 20s: %v", server, err)
		}
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if r := ev.Data.(*events.ProbeResult); r.Server == server {
				return r
			}
		}
	}
}
