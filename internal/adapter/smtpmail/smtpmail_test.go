package smtpmail_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/tcptest"
)

const (
	user     = "tocsin"
	password = "correct-horse-battery"
	rcpt     = "ops@customer.example"
)

func config(s *smtpserver.Server, mode smtpmail.TLSMode) smtpmail.Config {
	return smtpmail.Config{
		Host:    s.Host,
		Port:    s.Port,
		From:    "Tocsin Alarm <alarm@tocsin.example>",
		TLS:     mode,
		RootCAs: s.RootCAs,
		Timeout: 10 * time.Second,
	}
}

func newSender(t *testing.T, cfg smtpmail.Config) *smtpmail.Sender {
	return providertest.New(t, smtpmail.New, cfg)
}

func message() smtpmail.Message {
	return smtpmail.Message{
		To:        rcpt,
		ToName:    "Customer Ops",
		Subject:   "web-3 is down — since 12:00",
		MessageID: "incident-42.3@tocsin.example",
		InReplyTo: "incident-42.2@tocsin.example",
		References: []string{
			"incident-42.1@tocsin.example",
			"incident-42.2@tocsin.example",
		},
		Text:    "web-3 stopped answering at 12:00 UTC.\nNext update by 12:30.",
		Headers: map[string]string{"X-Tocsin-Incident": "42"},
	}
}

func TestSendStartTLSWithAuth(t *testing.T) {
	srv := smtpserver.Start(t, smtpserver.Options{Username: user, Password: password, TLS: true, RequireTLS: true})
	cfg := config(srv, smtpmail.TLSStartTLS)
	cfg.Username, cfg.Password = user, password

	m := message()
	m.HTML = "<p>web-3 stopped answering at <b>12:00 UTC</b>.</p>"
	before := time.Now().Add(-time.Second).Truncate(time.Second)
	if err := newSender(t, cfg).Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	want := smtpserver.Message{
		From:       "alarm@tocsin.example",
		To:         []string{rcpt},
		Subject:    "web-3 is down — since 12:00",
		MessageID:  "incident-42.3@tocsin.example",
		InReplyTo:  "incident-42.2@tocsin.example",
		References: []string{"incident-42.1@tocsin.example", "incident-42.2@tocsin.example"},
		Text:       "web-3 stopped answering at 12:00 UTC.\nNext update by 12:30.",
		HTML:       "<p>web-3 stopped answering at <b>12:00 UTC</b>.</p>",
		TLS:        true,
		AuthUser:   user,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(smtpserver.Message{}, "Raw", "Header")); diff != "" {
		t.Errorf("delivered message (-want +got):\n%s", diff)
	}
	for name, want := range map[string]string{
		"From":              `"Tocsin Alarm" <alarm@tocsin.example>`,
		"To":                `"Customer Ops" <ops@customer.example>`,
		"Auto-Submitted":    "auto-generated",
		"X-Tocsin-Incident": "42",
	} {
		if got := got.Header.Get(name); got != want {
			t.Errorf("header %s: got %q, want %q", name, got, want)
		}
	}
	sent, err := got.Header.Date()
	if err != nil || sent.Before(before) || sent.After(time.Now()) {
		t.Errorf("Date header %q (%v): want the time of sending", got.Header.Get("Date"), err)
	}
}

func TestSendTLSModes(t *testing.T) {
	tests := []struct {
		name    string
		server  smtpserver.Options
		mode    smtpmail.TLSMode
		auth    bool
		wantTLS bool
	}{
		{name: "starttls", server: smtpserver.Options{TLS: true}, mode: smtpmail.TLSStartTLS, wantTLS: true},
		{name: "default is starttls", server: smtpserver.Options{TLS: true}, mode: "", wantTLS: true},
		{name: "opportunistic, offered", server: smtpserver.Options{TLS: true}, mode: smtpmail.TLSOpportunistic, wantTLS: true},
		{name: "opportunistic, not offered", server: smtpserver.Options{}, mode: smtpmail.TLSOpportunistic},
		{name: "implicit", server: smtpserver.Options{ImplicitTLS: true, Username: user, Password: password}, mode: smtpmail.TLSImplicit, auth: true, wantTLS: true},
		{name: "none, though offered", server: smtpserver.Options{TLS: true}, mode: smtpmail.TLSNone},
		{name: "none, auth on loopback", server: smtpserver.Options{Username: user, Password: password}, mode: smtpmail.TLSNone, auth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtpserver.Start(t, tt.server)
			cfg := config(srv, tt.mode)
			if tt.auth {
				cfg.Username, cfg.Password = user, password
			}
			if err := newSender(t, cfg).Send(t.Context(), message()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			if msgs[0].TLS != tt.wantTLS {
				t.Errorf("TLS: got %v, want %v", msgs[0].TLS, tt.wantTLS)
			}
			if tt.auth && msgs[0].AuthUser != user {
				t.Errorf("AuthUser: got %q, want %q", msgs[0].AuthUser, user)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name          string
		server        smtpserver.Options
		failWith      int // FailWith this code before sending
		configure     func(cfg *smtpmail.Config)
		msg           func(m *smtpmail.Message)
		wantPermanent bool
		wantInError   []string
	}{
		{
			name:        "starttls demanded, not offered",
			server:      smtpserver.Options{},
			configure:   func(cfg *smtpmail.Config) { cfg.TLS = smtpmail.TLSStartTLS },
			wantInError: []string{"STARTTLS"},
		},
		{
			name:        "certificate not trusted",
			server:      smtpserver.Options{TLS: true},
			configure:   func(cfg *smtpmail.Config) { cfg.RootCAs = nil },
			wantInError: []string{"certificate"},
		},
		{
			name:        "transient refusal",
			server:      smtpserver.Options{},
			failWith:    451,
			wantInError: []string{"451", "refused by the test"},
		},
		{
			name:          "permanent refusal",
			server:        smtpserver.Options{},
			failWith:      550,
			wantPermanent: true,
			wantInError:   []string{"550", "refused by the test", "***@customer.example"},
		},
		{
			name:   "wrong password",
			server: smtpserver.Options{Username: user, Password: password, TLS: true, RequireTLS: true},
			configure: func(cfg *smtpmail.Config) {
				cfg.TLS, cfg.Username, cfg.Password = smtpmail.TLSStartTLS, user, "not-the-password-2"
			},
			wantPermanent: true,
			wantInError:   []string{"535"},
		},
		{
			name:          "no login where one is required",
			server:        smtpserver.Options{Username: user, Password: password},
			configure:     func(cfg *smtpmail.Config) { cfg.TLS = smtpmail.TLSNone },
			wantPermanent: true,
			wantInError:   []string{"530"},
		},
		{
			name:          "invalid recipient address",
			server:        smtpserver.Options{},
			msg:           func(m *smtpmail.Message) { m.To = "ops(at)customer.example" },
			wantPermanent: true,
			wantInError:   []string{"recipient address"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtpserver.Start(t, tt.server)
			if tt.failWith != 0 {
				srv.FailWith(tt.failWith, "Refused by the test")
			}
			cfg := config(srv, smtpmail.TLSOpportunistic)
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			m := message()
			if tt.msg != nil {
				tt.msg(&m)
			}
			err := newSender(t, cfg).Send(t.Context(), m)
			if err == nil {
				t.Fatal("Send: got no error")
			}
			t.Logf("error: %v", err)
			if got := bus.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent: got %v, want %v; error: %v", got, tt.wantPermanent, err)
			}
			for _, w := range tt.wantInError {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
				t.Errorf("error %q contains the password", err)
			}
			if strings.Contains(err.Error(), m.To) {
				t.Errorf("error %q contains the recipient's address", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("got %d messages delivered, want none", n)
			}
		})
	}
}

func TestResendCarriesTheSameMessageID(t *testing.T) {
	srv := smtpserver.Start(t, smtpserver.Options{})
	s := newSender(t, config(srv, smtpmail.TLSNone))
	for range 2 {
		if err := s.Send(t.Context(), message()); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].MessageID != msgs[1].MessageID || msgs[0].MessageID != message().MessageID {
		t.Errorf("got %d messages with ids %v; want 2 with id %q", len(msgs), ids(msgs), message().MessageID)
	}
}

// TestSendGivesUpOnASilentServer checks that ctx and Config.Timeout are
// honoured while go-mail waits on a server, not only while it dials.
func TestSendGivesUpOnASilentServer(t *testing.T) {
	tests := []struct {
		name    string
		greet   bool // say 220, then nothing more
		timeout time.Duration
		ctx     func(t *testing.T) context.Context
		want    error
	}{
		{
			name: "context deadline, no greeting",
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			name:  "context canceled after the greeting",
			greet: true,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(200*time.Millisecond, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.Canceled,
		},
		{
			name:    "config timeout",
			greet:   true,
			timeout: 200 * time.Millisecond,
			ctx:     func(t *testing.T) context.Context { return t.Context() },
			want:    context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := silentServer(t, tt.greet)
			host, port := splitAddr(t, addr)
			cfg := smtpmail.Config{Host: host, Port: port, From: "alarm@tocsin.example", TLS: smtpmail.TLSNone, Timeout: 30 * time.Second}
			if tt.timeout != 0 {
				cfg.Timeout = tt.timeout
			}
			s := newSender(t, cfg)

			start := time.Now()
			err := s.Send(tt.ctx(t), message())
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Send took %v, want it to return soon after 200ms", took)
			}
			if err == nil {
				t.Fatal("Send: got no error")
			}
			if bus.IsPermanent(err) {
				t.Errorf("got a permanent error, want a retryable one: %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want it to wrap %v", err, tt.want)
			}
		})
	}
}

// TestSendAcceptedButHangupFails checks that a message the server took is
// not reported as failed, which would send it a second time.
func TestSendAcceptedButHangupFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	data := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		reply := func(s string) { fmt.Fprintf(conn, "%s\r\n", s) }
		reply("220 scripted ESMTP")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
			case "DATA":
				reply("354 go ahead")
				var b strings.Builder
				for {
					l, err := r.ReadString('\n')
					if err != nil || l == ".\r\n" {
						break
					}
					b.WriteString(l)
				}
				data <- b.String()
				reply("250 2.0.0 queued")
				return // hang up before RSET and QUIT
			default:
				reply("250 ok")
			}
		}
	}()

	host, port := splitAddr(t, ln.Addr().String())
	s := newSender(t, smtpmail.Config{Host: host, Port: port, From: "alarm@tocsin.example", TLS: smtpmail.TLSNone})
	if err := s.Send(t.Context(), message()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case d := <-data:
		if !strings.Contains(d, "Message-ID: <incident-42.3@tocsin.example>") {
			t.Errorf("server got %q, want the message", d)
		}
	default:
		t.Fatal("the server got no message")
	}
}

func TestNew(t *testing.T) {
	valid := smtpmail.Config{Host: "smtp.example.com", From: "Tocsin <alarm@tocsin.example>"}
	tests := []providertest.Change[smtpmail.Config]{
		{Name: "minimal", Change: func(*smtpmail.Config) {}},
		{Name: "bare from address", Change: func(cfg *smtpmail.Config) { cfg.From = "alarm@tocsin.example" }},
		{Name: "auth over clear text on loopback", Change: func(cfg *smtpmail.Config) {
			cfg.Host, cfg.TLS, cfg.Username, cfg.Password = "127.0.0.1", smtpmail.TLSNone, "u", "p"
		}},
		{Name: "no host", Change: func(cfg *smtpmail.Config) { cfg.Host = "" }, Want: []string{"host is empty"}},
		{Name: "URL for host", Change: func(cfg *smtpmail.Config) { cfg.Host = "smtp://smtp.example.com" }, Want: []string{"not a URL"}},
		{Name: "port in host", Change: func(cfg *smtpmail.Config) { cfg.Host = "smtp.example.com:587" }, Want: []string{"includes a port"}},
		{Name: "port out of range", Change: func(cfg *smtpmail.Config) { cfg.Port = 70000 }, Want: []string{"port 70000"}},
		{Name: "no from", Change: func(cfg *smtpmail.Config) { cfg.From = "" }, Want: []string{"from is empty"}},
		{Name: "bad from", Change: func(cfg *smtpmail.Config) { cfg.From = "Tocsin alarm at tocsin" }, Want: []string{`from "Tocsin alarm at tocsin"`}},
		{Name: "unknown tls mode", Change: func(cfg *smtpmail.Config) { cfg.TLS = "ssl" }, Want: []string{`tls "ssl"`, "starttls"}},
		{Name: "password without username", Change: func(cfg *smtpmail.Config) { cfg.Password = "p4ss-w0rd" }, Want: []string{"username is empty"}},
		{Name: "auth over clear text", Change: func(cfg *smtpmail.Config) {
			cfg.TLS, cfg.Username, cfg.Password = smtpmail.TLSNone, "u", "secret-password"
		}, Want: []string{"clear text"}},
		{Name: "negative timeout", Change: func(cfg *smtpmail.Config) { cfg.Timeout = -time.Second }, Want: []string{"negative"}},
		{Name: "every problem at once", Change: func(cfg *smtpmail.Config) { *cfg = smtpmail.Config{TLS: "tls"} }, Want: []string{"host", "from", "tls"}},
	}
	providertest.Configs(t, smtpmail.New, valid, tests, func(cfg smtpmail.Config) []string { return []string{cfg.Password} })
}

// silentServer accepts connections and, if greet is set, says 220 and then
// nothing more.
func silentServer(t *testing.T, greet bool) string {
	t.Helper()
	return tcptest.Serve(t, func(c net.Conn) {
		if greet {
			fmt.Fprint(c, "220 listening, not answering\r\n")
		}
		_, _ = io.Copy(io.Discard, c) // until the client or the test ends it
	})
}

func splitAddr(t *testing.T, addr string) (string, int) {
	t.Helper()
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return tcp.IP.String(), tcp.Port
}

func ids(msgs []smtpserver.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.MessageID)
	}
	return out
}

// TestContract: the sender keeps the promises every adapter keeps.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T, o providertest.Options) providertest.Rig {
		srv := smtpserver.Start(t, smtpserver.Options{TLS: true, Username: user, Password: password})
		cfg := config(srv, smtpmail.TLSStartTLS)
		cfg.Username, cfg.Password, cfg.Timeout = user, password, o.Timeout
		if o.Addr != "" {
			cfg.Host, cfg.Port = splitAddr(t, o.Addr)
		}
		s := newSender(t, cfg)
		return providertest.Rig{
			Send: func(ctx context.Context, key string) (string, error) {
				m := message()
				m.MessageID = key + "@tocsin.example"
				return "", s.Send(ctx, m)
			},
			Refuse:      func() { srv.FailWith(550, "") },
			Unavailable: func() { srv.FailWith(451, "") },
			Recover:     func() { srv.FailWith(0, "") },
			Accepted:    func() []string { return ids(srv.Messages()) },
			Secrets:     []string{password, rcpt},
		}
	})
}
