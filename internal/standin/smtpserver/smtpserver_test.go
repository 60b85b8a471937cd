package smtpserver_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
)

const plainMessage = "From: Tocsin <alarm@tocsin.example>\r\n" +
	"To: ops@customer.example\r\n" +
	"Subject: =?utf-8?q?Ausfall_=C3=BCberall?=\r\n" +
	"Message-ID: <incident-7.2@tocsin.example>\r\n" +
	"In-Reply-To: <incident-7.1@tocsin.example>\r\n" +
	"References: <incident-7.0@tocsin.example>\r\n" +
	" <incident-7.1@tocsin.example>\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"web-3 is down since 12:00 =E2=80=94 we are on it.\r\n" +
	"A soft line break =\r\n" +
	"joins this.\r\n"

// dial opens a client session to s and says EHLO.
func dial(t *testing.T, s *smtpserver.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

func startTLS(t *testing.T, c *smtp.Client, s *smtpserver.Server, serverName string) {
	t.Helper()
	if err := c.StartTLS(&tls.Config{ServerName: serverName, RootCAs: s.RootCAs}); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
}

// send runs one mail transaction on c and returns the first error.
func send(c *smtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	return w.Close()
}

func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != code {
		t.Fatalf("got error %v, want an SMTP reply %d", err, code)
	}
}

func TestDeliveryDecodesEnvelopeAndHeaders(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{})
	c := dial(t, s)
	to := []string{"ops@customer.example", "cto@customer.example"}
	if err := send(c, "bounce@tocsin.example", to, plainMessage); err != nil {
		t.Fatalf("send: %v", err)
	}

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	want := smtpserver.Message{
		From:       "bounce@tocsin.example",
		To:         to,
		Raw:        []byte(plainMessage),
		Subject:    "Ausfall überall",
		MessageID:  "incident-7.2@tocsin.example",
		InReplyTo:  "incident-7.1@tocsin.example",
		References: []string{"incident-7.0@tocsin.example", "incident-7.1@tocsin.example"},
		Text:       "web-3 is down since 12:00 — we are on it.\nA soft line break joins this.\n",
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(smtpserver.Message{}, "Header")); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	if got, want := got.Header.Get("From"), "Tocsin <alarm@tocsin.example>"; got != want {
		t.Errorf("From header: got %q, want %q", got, want)
	}
}

func TestMessagesIsACopy(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{})
	if err := send(dial(t, s), "a@x.example", []string{"b@x.example"}, plainMessage); err != nil {
		t.Fatalf("send: %v", err)
	}
	first := s.Messages()
	first[0].To[0] = "changed"
	first[0].Header["Subject"][0] = "changed"
	second := s.Messages()
	if second[0].To[0] != "b@x.example" || second[0].Header.Get("Subject") == "changed" {
		t.Errorf("changing what Messages returned changed the server's copy: %+v", second[0])
	}
}

func TestAuth(t *testing.T) {
	const user, pass = "tocsin", "s3cret-pa55"
	tests := []struct {
		name     string
		auth     smtp.Auth // nil: do not authenticate
		authCode int       // the AUTH reply; 0 for success
		mailCode int       // the MAIL reply; 0 for success
	}{
		{name: "right password", auth: smtp.PlainAuth("", user, pass, "127.0.0.1")},
		// net/smtp hangs up after a failed AUTH.
		{name: "wrong password", auth: smtp.PlainAuth("", user, "guess", "127.0.0.1"), authCode: 535},
		{name: "unknown user", auth: smtp.PlainAuth("", "root", pass, "127.0.0.1"), authCode: 535},
		{name: "no authentication", mailCode: 530},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtpserver.Start(t, smtpserver.Options{Username: user, Password: pass})
			c := dial(t, s)
			if tt.auth != nil {
				err := c.Auth(tt.auth)
				if tt.authCode == 0 && err != nil {
					t.Fatalf("AUTH: %v", err)
				}
				if tt.authCode != 0 {
					wantCode(t, err, tt.authCode)
					return
				}
			}
			err := send(c, "a@x.example", []string{"b@x.example"}, plainMessage)
			if tt.mailCode != 0 {
				wantCode(t, err, tt.mailCode)
				if n := len(s.Messages()); n != 0 {
					t.Errorf("got %d messages, want none", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			if got := s.Messages()[0].AuthUser; got != user {
				t.Errorf("AuthUser: got %q, want %q", got, user)
			}
		})
	}
}

func TestRequireTLS(t *testing.T) {
	const user, pass = "tocsin", "s3cret-pa55"
	s := smtpserver.Start(t, smtpserver.Options{Username: user, Password: pass, TLS: true, RequireTLS: true})
	c := dial(t, s)

	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS is not offered")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH is offered before STARTTLS")
	}
	wantCode(t, c.Mail("a@x.example"), 530)

	startTLS(t, c, s, "127.0.0.1")
	if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
		t.Fatalf("AUTH after STARTTLS: %v", err)
	}
	if err := send(c, "a@x.example", []string{"b@x.example"}, plainMessage); err != nil {
		t.Fatalf("send after STARTTLS: %v", err)
	}
	m := s.Messages()[0]
	if !m.TLS || m.AuthUser != user {
		t.Errorf("got TLS %v, AuthUser %q; want true, %q", m.TLS, m.AuthUser, user)
	}
}

func TestRequireTLSWithoutTLSIsRefused(t *testing.T) {
	if _, err := smtpserver.New(smtpserver.Options{RequireTLS: true}); err == nil {
		t.Fatal("got no error for RequireTLS without TLS")
	}
}

func TestCertificate(t *testing.T) {
	tests := []struct {
		name       string
		serverName string
		trusted    bool
		wantErr    bool
	}{
		{name: "IP address, trusted", serverName: "127.0.0.1", trusted: true},
		{name: "localhost, trusted", serverName: "localhost", trusted: true},
		{name: "other name", serverName: "mail.example.com", trusted: true, wantErr: true},
		{name: "system roots", serverName: "127.0.0.1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtpserver.Start(t, smtpserver.Options{TLS: true})
			c := dial(t, s)
			cfg := &tls.Config{ServerName: tt.serverName}
			if tt.trusted {
				cfg.RootCAs = s.RootCAs
			}
			err := c.StartTLS(cfg)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("STARTTLS: got error %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if err := send(c, "a@x.example", []string{"b@x.example"}, plainMessage); err != nil {
				t.Fatalf("send: %v", err)
			}
			if !s.Messages()[0].TLS {
				t.Error("message not marked as sent over TLS")
			}
		})
	}
}

func TestImplicitTLS(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{ImplicitTLS: true, Username: "u", Password: "p"})
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{ServerName: "127.0.0.1", RootCAs: s.RootCAs})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatalf("greeting: %v", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered on a connection that is already TLS")
	}
	if err := c.Auth(smtp.PlainAuth("", "u", "p", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := send(c, "a@x.example", []string{"b@x.example"}, plainMessage); err != nil {
		t.Fatalf("send: %v", err)
	}
	if m := s.Messages()[0]; !m.TLS || m.AuthUser != "u" {
		t.Errorf("got TLS %v, AuthUser %q; want true, %q", m.TLS, m.AuthUser, "u")
	}
}

func TestFailWith(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{})
	c := dial(t, s)
	to := []string{"b@x.example"}

	s.FailWith(451, "Try again later")
	err := send(c, "a@x.example", to, plainMessage)
	wantCode(t, err, 451)
	if !strings.Contains(err.Error(), "Try again later") {
		t.Errorf("error %q lacks the message given to FailWith", err)
	}
	if err := c.Reset(); err != nil {
		t.Fatalf("RSET: %v", err)
	}

	s.FailWith(550, "No such user")
	wantCode(t, send(c, "a@x.example", to, plainMessage), 550)
	if err := c.Reset(); err != nil {
		t.Fatalf("RSET: %v", err)
	}

	// A failure set between RCPT and DATA is the DATA reply.
	s.FailWith(0, "")
	if err := c.Mail("a@x.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to[0]); err != nil {
		t.Fatal(err)
	}
	s.FailWith(552, "Mailbox full")
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write([]byte(plainMessage)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, w.Close(), 552)

	if n := len(s.Messages()); n != 0 {
		t.Fatalf("got %d messages while failing, want none", n)
	}
	s.FailWith(0, "")
	if err := send(c, "a@x.example", to, plainMessage); err != nil {
		t.Fatalf("send after FailWith(0): %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("got %d messages, want 1", n)
	}
}

func TestMultipartDecoding(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		wantText string
		wantHTML string
	}{
		{
			name: "alternative, quoted-printable and base64",
			msg: "Subject: alt\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
				"\r\n" +
				"--b1\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"\r\n" +
				"Caf=C3=A9 is down.\r\n" +
				"--b1\r\n" +
				"Content-Type: text/html; charset=utf-8\r\n" +
				"Content-Transfer-Encoding: base64\r\n" +
				"\r\n" +
				"PHA+Q2Fmw6kgaXMgPGI+ZG93bjwvYj4u\r\n" +
				"PC9wPg==\r\n" +
				"--b1--\r\n",
			wantText: "Café is down.",
			wantHTML: "<p>Café is <b>down</b>.</p>",
		},
		{
			name: "mixed with nested alternative and a text attachment",
			msg: "Subject: mixed\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Content-Type: multipart/mixed; boundary=outer\r\n" +
				"\r\n" +
				"preamble\r\n" +
				"--outer\r\n" +
				"Content-Type: multipart/alternative; boundary=inner\r\n" +
				"\r\n" +
				"--inner\r\n" +
				"Content-Type: text/plain\r\n" +
				"\r\n" +
				"plain body\r\n" +
				"second line\r\n" +
				"--inner\r\n" +
				"Content-Type: text/html\r\n" +
				"\r\n" +
				"<p>html body</p>\r\n" +
				"--inner--\r\n" +
				"--outer\r\n" +
				"Content-Type: text/plain\r\n" +
				"Content-Disposition: attachment; filename=log.txt\r\n" +
				"\r\n" +
				"not the body\r\n" +
				"--outer--\r\n",
			wantText: "plain body\nsecond line",
			wantHTML: "<p>html body</p>",
		},
		{
			name:     "no content type is text/plain",
			msg:      "Subject: bare\r\n\r\nhello\r\n",
			wantText: "hello\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := smtpserver.Start(t, smtpserver.Options{})
			if err := send(dial(t, s), "a@x.example", []string{"b@x.example"}, tt.msg); err != nil {
				t.Fatalf("send: %v", err)
			}
			m := s.Messages()[0]
			if m.Text != tt.wantText {
				t.Errorf("Text: got %q, want %q", m.Text, tt.wantText)
			}
			if m.HTML != tt.wantHTML {
				t.Errorf("HTML: got %q, want %q", m.HTML, tt.wantHTML)
			}
		})
	}
}

func TestMalformedMessageIsRefused(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{})
	msg := "Subject: broken\r\nContent-Type: multipart/alternative\r\n\r\nno boundary\r\n"
	wantCode(t, send(dial(t, s), "a@x.example", []string{"b@x.example"}, msg), 554)
}

func TestWaitFor(t *testing.T) {
	s := smtpserver.Start(t, smtpserver.Options{})
	two := func(msgs []smtpserver.Message) bool { return len(msgs) >= 2 }

	go func() {
		for range 2 {
			c, err := smtp.Dial(s.Addr)
			if err != nil {
				return // WaitFor below reports what did not arrive
			}
			_ = send(c, "a@x.example", []string{"b@x.example"}, plainMessage)
			_ = c.Quit()
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msgs, err := s.WaitFor(ctx, two)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(msgs))
	}

	ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = s.WaitFor(ctx, func(msgs []smtpserver.Message) bool { return len(msgs) >= 3 })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), "2 message(s) arrived") || !strings.Contains(err.Error(), "incident-7.2@tocsin.example") {
		t.Errorf("error %q does not describe what arrived", err)
	}
}

func TestWaitForEndsWhenClosed(t *testing.T) {
	s, err := smtpserver.New(smtpserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.WaitFor(context.Background(), func(msgs []smtpserver.Message) bool { return len(msgs) > 0 })
		done <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("got no error from WaitFor on a closed server")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitFor did not return after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
