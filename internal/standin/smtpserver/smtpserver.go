// Package smtpserver runs a real SMTP server on loopback, so that code which
// sends mail can be tested against the protocol as it is spoken on the wire:
// STARTTLS with a certificate the test can trust, PLAIN authentication,
// transient and permanent refusals on command, and every accepted message
// parsed and decoded for assertions.
package smtpserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"

	"github.com/emersion/go-smtp"
)

// Options configure a Server. The zero value accepts any mail from anyone
// over plain text.
type Options struct {
	// Username and Password, when Username is set, are the one account
	// the server accepts over AUTH PLAIN; mail is then refused until the
	// client has authenticated.
	Username, Password string
	// TLS offers STARTTLS with a certificate, generated for this server
	// alone, that is valid for 127.0.0.1, ::1 and "localhost" and trusted
	// by Server.RootCAs.
	TLS bool
	// RequireTLS refuses AUTH and MAIL until the client has issued
	// STARTTLS, as a submission server should. It needs TLS.
	RequireTLS bool
	// ImplicitTLS speaks TLS from the first byte (SMTPS, the port 465
	// style) instead of offering STARTTLS. It implies TLS.
	ImplicitTLS bool
}

// Server is an SMTP server listening on 127.0.0.1. It keeps every message
// it accepts, in arrival order, for as long as the Server value lives.
type Server struct {
	Host string // always "127.0.0.1"
	Port int
	Addr string // Host:Port
	// RootCAs trusts the server's certificate; nil unless TLS or
	// ImplicitTLS was asked for.
	RootCAs *x509.CertPool
	// CertPEM is the server's certificate in PEM, for a client configured
	// from a file (a ca_file in Tocsin's config).
	CertPEM []byte

	opts    Options
	srv     *smtp.Server
	ln      net.Listener
	served  chan struct{} // closed when the accept loop has returned
	closed  chan struct{} // closed by Close
	once    sync.Once
	logf    *gatedLog
	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{} // closed and replaced whenever a message is stored
	fail    *smtp.SMTPError
}

// New starts a server on an ephemeral port of 127.0.0.1 and serves in the
// background until Close.
func New(opts Options) (*Server, error) {
	return newServer(opts, nil)
}

// Start is New for a test: it fails the test if the server cannot start,
// sends the server's own error log to t.Log, and closes the server when the
// test ends.
func Start(t standin.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(opts, t.Logf)
	if err != nil {
		t.Fatalf("start smtp server: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close smtp server: %v", err)
		}
	})
	return s
}

func newServer(opts Options, logf func(format string, args ...any)) (*Server, error) {
	if opts.RequireTLS && !opts.TLS && !opts.ImplicitTLS {
		return nil, errors.New("smtpserver: RequireTLS needs TLS")
	}
	if opts.Password != "" && opts.Username == "" {
		return nil, errors.New("smtpserver: Password without Username")
	}
	s := &Server{
		opts:    opts,
		served:  make(chan struct{}),
		closed:  make(chan struct{}),
		arrived: make(chan struct{}),
		logf:    &gatedLog{logf: logf},
	}

	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.MaxRecipients = 100
	srv.ErrorLog = log.New(s.logf, "smtpserver: ", 0)
	// go-smtp only offers AUTH over TLS unless told otherwise; without
	// RequireTLS a test may authenticate in clear text on loopback.
	srv.AllowInsecureAuth = !opts.RequireTLS

	var tlsConfig *tls.Config
	if opts.TLS || opts.ImplicitTLS {
		// A day from an hour ago: a client's clock a little behind is fine.
		now := time.Now()
		cert, pool, err := standin.SelfSigned("smtpserver on localhost", now.Add(-time.Hour), now.Add(24*time.Hour))
		if err != nil {
			return nil, fmt.Errorf("smtpserver: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.RootCAs = pool
		s.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtpserver: listen on loopback: %w", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	} else {
		srv.TLSConfig = tlsConfig // nil: STARTTLS is not offered
	}
	s.srv, s.ln = srv, ln

	addr := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port, s.Addr = "127.0.0.1", addr.Port, addr.String()

	go func() {
		defer close(s.served)
		if err := srv.Serve(ln); err != nil {
			s.logf.Printf("smtpserver: serve: %v", err)
		}
	}()
	return s, nil
}

// Close stops accepting connections and drops the open ones. Messages
// already accepted stay readable. Calling Close again does nothing.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.srv.Close()
		// The accept loop may not have handed the listener to go-smtp
		// yet, in which case srv.Close has not closed it.
		if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
			err = lerr
		}
		<-s.served
		// Connections may still be winding down; what they would log now
		// could outlive the test that owns the log.
		s.logf.stop()
	})
	return err
}

// FailWith makes every following RCPT and DATA command answer with code and
// msg, as a server that is out of disk (451) or refuses the recipient (550)
// would; code should be 4xx or 5xx. FailWith(0, "") makes the server accept
// mail again.
func (s *Server) FailWith(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.fail = nil
		return
	}
	if msg == "" {
		msg = "Refused on command of the test"
	}
	s.fail = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

func (s *Server) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		return nil
	}
	return s.fail
}

// Messages returns a copy of every message accepted so far, in the order
// the server accepted them.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.msgs)
}

// WaitFor returns the messages as soon as cond holds for them. cond is
// called with a copy each time a message arrives, and must not block. If ctx
// ends first, WaitFor returns the messages it last saw and an error that
// lists them, so that a failing test says what did arrive.
func (s *Server) WaitFor(ctx context.Context, cond func([]Message) bool) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs := cloneMessages(s.msgs)
		arrived := s.arrived
		s.mu.Unlock()

		if cond(msgs) {
			return msgs, nil
		}
		select {
		case <-arrived:
		case <-s.closed:
			return msgs, fmt.Errorf("smtpserver: server closed before the condition held; %s", describe(msgs))
		case <-ctx.Done():
			return msgs, fmt.Errorf("smtpserver: condition did not hold; %s: %w", describe(msgs), context.Cause(ctx))
		}
	}
}

func (s *Server) store(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func describe(msgs []Message) string {
	return standin.Arrived(msgs, "message", func(m Message) string {
		return fmt.Sprintf("from %q to %q subject %q message-id %q", m.From, m.To, m.Subject, m.MessageID)
	})
}

// gatedLog passes the SMTP server's error log to a test's log until the
// server is closed: testing.T panics when it is logged to after the test.
type gatedLog struct {
	mu   sync.Mutex
	logf func(format string, args ...any)
}

var _ io.Writer = (*gatedLog)(nil)

func (g *gatedLog) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logf != nil {
		g.logf("%s", strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (g *gatedLog) Printf(format string, args ...any) {
	_, _ = fmt.Fprintf(g, format, args...)
}

func (g *gatedLog) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.logf = nil
}
