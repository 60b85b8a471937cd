package statuspage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/clock"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// staleConfig is the site's config with a stale alert to ops@ through
// mail, after ten minutes.
func staleConfig(t *testing.T, mail *smtpserver.Server) *config.Config {
	t.Helper()
	return siteConfigWith(t, fmt.Sprintf(`, stale_alert: {after: 10m, to: [ops@example.net], smtp: {host: 127.0.0.1, port: %d, from: "Tocsin status <page@example.net>", tls: none}}`, mail.Port))
}

// staleTune runs the page on clk, looking at its link and retrying often.
func staleTune(clk *clock.Manual, sends *atomic.Int32) func(*Service) {
	return func(s *Service) {
		s.now, s.page.now = clk.Now, clk.Now
		s.stale.tick, s.stale.backoff = 20*time.Millisecond, 20*time.Millisecond
		send := s.stale.send
		s.stale.send = func(ctx context.Context, m smtpmail.Message) error {
			sends.Add(1)
			return send(ctx, m)
		}
	}
}

func pageSays(t *testing.T, url, text string) bool {
	t.Helper()
	resp, err := http.Get(url + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), text)
}

// noMore is the bounded look for "nothing more comes": the alert looks at
// the link every 20ms, so a second email would come within this.
func noMore(t *testing.T, mail *smtpserver.Server, want int) {
	t.Helper()
	time.Sleep(400 * time.Millisecond)
	if msgs := mail.Messages(); len(msgs) != want {
		t.Fatalf("%d emails, want %d: %v", len(msgs), want, subjects(msgs))
	}
}

// waitMail waits for the nth email.
func waitMail(t *testing.T, mail *smtpserver.Server, n int) []smtpserver.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait.Default)
	defer cancel()
	msgs, err := mail.WaitFor(ctx, func(m []smtpserver.Message) bool { return len(m) >= n })
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func subjects(msgs []smtpserver.Message) []string {
	var s []string
	for _, m := range msgs {
		s = append(s, m.Subject)
	}
	return s
}

// TestStaleAlertOncePerEpisode: the main site goes silent; after `after`
// staff get one email, not another while it stays silent nor after the
// page restarts, and one more when the page hears from the main site again.
func TestStaleAlertOncePerEpisode(t *testing.T) {
	t.Parallel()
	mail := smtpserver.Start(t, smtpserver.Options{})
	cfg := staleConfig(t, mail)
	dir := t.TempDir()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Open: true})
	if err != nil {
		t.Fatal(err)
	}
	addr := ns.Addr().String()
	(&bustest.Server{NS: ns, URL: ns.ClientURL()}).Connect(t, nil) // the streams and buckets
	t0 := time.Date(2026, 12, 20, 3, 12, 0, 0, time.UTC)
	clk := clock.New(t0.Add(-time.Hour))
	var sends atomic.Int32
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	connect := func() *bus.Bus {
		b, err := bus.Connect("nats://"+addr, nil, "page", log, nats.RetryOnFailedConnect(true), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.NC.Close)
		return b
	}
	state := filepath.Join(t.TempDir(), "statuspage.json")
	url, stop := runPageWith(t, cfg, connect(), state, staleTune(clk, &sends))
	wait.For(t, "the page following the main site", func() bool { return pageSays(t, url, "this page updates itself") })

	clk.Advance(time.Hour) // 03:12
	ns.Shutdown()
	ns.WaitForShutdown()
	wait.For(t, "the page to say its link is lost", func() bool { return pageSays(t, url, "lost its link") })
	clk.Advance(9 * time.Minute)
	noMore(t, mail, 0) // not before `after`

	clk.Advance(time.Minute)
	m := waitMail(t, mail, 1)[0]
	if len(m.To) != 1 || m.To[0] != "ops@example.net" || m.From != "page@example.net" {
		t.Errorf("stale email from %q to %v", m.From, m.To)
	}
	for _, want := range []string{"status.example.net", "heard nothing from Tocsin since 03:12 UTC", "(10 minutes)", "the alarm itself may be down", "`tocsin status`"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("stale email lacks %q:\n%s", want, m.Text)
		}
	}
	if !strings.Contains(m.Subject, "heard nothing for 10 minutes") {
		t.Errorf("stale email's subject %q", m.Subject)
	}
	clk.Advance(2 * time.Minute)
	noMore(t, mail, 1) // still silent: no second email

	// Restarted during the silence, it remembers it told staff.
	stop()
	url, _ = runPageWith(t, cfg, connect(), state, staleTune(clk, &sends))
	wait.For(t, "the restarted page to say its link is lost", func() bool { return pageSays(t, url, "lost its link") })
	clk.Advance(2 * time.Minute) // 03:26
	noMore(t, mail, 1)

	ns2, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: addr, Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns2.Shutdown(); ns2.WaitForShutdown() })
	r := waitMail(t, mail, 2)[1]
	for _, want := range []string{"status.example.net", "heard from Tocsin again at 03:26 UTC", "silent for 14 minutes"} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("recovery email lacks %q:\n%s", want, r.Text)
		}
	}
	if r.InReplyTo != m.MessageID {
		t.Errorf("recovery email in reply to %q, want the stale email's %q", r.InReplyTo, m.MessageID)
	}
	noMore(t, mail, 2)
	if n := sends.Load(); n != 2 {
		t.Errorf("%d attempts to send, want 2", n)
	}
}

// TestStaleAlertRetried: a mail server that refuses at first gets the
// email again, with backoff, and staff still get it once.
func TestStaleAlertRetried(t *testing.T) {
	t.Parallel()
	mail := smtpserver.Start(t, smtpserver.Options{})
	mail.FailWith(451, "out of disk")
	cfg := staleConfig(t, mail)
	srv := bustest.Start(t)
	clk := clock.New(time.Now())
	var sends atomic.Int32
	url, _ := runPageWith(t, cfg, srv.Connect(t, nil), filepath.Join(t.TempDir(), "statuspage.json"), staleTune(clk, &sends))
	wait.For(t, "the page following the main site", func() bool { return pageSays(t, url, "this page updates itself") })
	srv.NS.Shutdown()
	wait.For(t, "the page to say its link is lost", func() bool { return pageSays(t, url, "lost its link") })
	clk.Advance(10 * time.Minute)
	wait.For(t, "attempts refused by the mail server", func() bool { return sends.Load() >= 3 })
	if n := len(mail.Messages()); n != 0 {
		t.Fatalf("%d emails accepted while the server refuses", n)
	}
	mail.FailWith(0, "")
	waitMail(t, mail, 1)
	noMore(t, mail, 1)
}
