// Package smtpmail is the notifier's email channel: it sends one message to
// one recipient through an SMTP submission server, with the headers that
// let mail clients thread and de-duplicate an incident's messages, and
// tells the bus which failures are worth retrying.
package smtpmail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// TLSMode says how the connection to the SMTP server is protected.
type TLSMode string

// The TLS modes. The empty mode is TLSStartTLS.
const (
	// TLSOpportunistic uses STARTTLS when the server offers it and sends
	// in clear text otherwise; it protects against eavesdroppers, not
	// against anyone who can strip the offer.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSStartTLS insists on STARTTLS and refuses to send without it
	// (submission, port 587).
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSNone never uses TLS; for a relay on the same host.
	TLSNone TLSMode = "none"
)

// DefaultTimeout bounds one Send when Config.Timeout is zero.
const DefaultTimeout = 15 * time.Second

// Config is where and as whom mail is sent.
type Config struct {
	Host string
	Port int    // 0: 465 for TLSImplicit, 25 for TLSNone, 587 otherwise
	From string // "Tocsin <alarm@example.com>" or "alarm@example.com"
	// Username and Password, when Username is set, log in with AUTH PLAIN.
	Username, Password string
	TLS                TLSMode
	RootCAs            *x509.CertPool // the CAs that may sign the server's certificate; nil: the system's
	// Timeout bounds one Send from dialling to QUIT; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Sender sends mail as configured. It holds no connection between sends,
// so it is safe for concurrent use and survives a restarted server.
type Sender struct {
	cfg  Config
	addr string // host:port, for errors
	tls  *tls.Config
}

// New checks cfg, reporting every problem at once, and fills in defaults.
func New(cfg Config) (*Sender, error) {
	var problems []error
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSOpportunistic, TLSStartTLS, TLSImplicit, TLSNone:
	default:
		problems = append(problems, fmt.Errorf("tls %q: want %s, %s, %s or %s",
			cfg.TLS, TLSStartTLS, TLSImplicit, TLSOpportunistic, TLSNone))
	}
	switch {
	case cfg.Host == "":
		problems = append(problems, errors.New("host is empty"))
	case strings.Contains(cfg.Host, "/"):
		problems = append(problems, fmt.Errorf("host %q: want a host name or IP address, not a URL", cfg.Host))
	default:
		if _, _, err := net.SplitHostPort(cfg.Host); err == nil {
			problems = append(problems, fmt.Errorf("host %q includes a port; set port instead", cfg.Host))
		}
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case TLSImplicit:
			cfg.Port = 465
		case TLSNone:
			cfg.Port = 25
		default:
			cfg.Port = 587
		}
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		problems = append(problems, fmt.Errorf("port %d is out of range", cfg.Port))
	}
	if cfg.From == "" {
		problems = append(problems, errors.New("from is empty"))
	} else if _, err := netmail.ParseAddress(cfg.From); err != nil {
		problems = append(problems, fmt.Errorf("from %q: want \"Name <address>\" or an address: %w", cfg.From, err))
	}
	if cfg.Password != "" && cfg.Username == "" {
		problems = append(problems, errors.New("password is set but username is empty"))
	}
	if cfg.Username != "" && cfg.TLS == TLSNone && !isLoopback(cfg.Host) {
		problems = append(problems, fmt.Errorf("username is set with tls %q: the password would cross the network in clear text; use %s or %s",
			TLSNone, TLSStartTLS, TLSImplicit))
	}
	if cfg.Timeout < 0 {
		problems = append(problems, fmt.Errorf("timeout %v is negative", cfg.Timeout))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("smtp config: %w", errors.Join(problems...))
	}
	return &Sender{
		cfg:  cfg,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		tls:  &tls.Config{ServerName: cfg.Host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
	}, nil
}

// Send delivers m over a new connection. It returns nil once the server has
// accepted the message, even if hanging up afterwards fails: sending again
// would only deliver it twice. A failure is a *bus.ProviderError, Status
// the server's reply code. One that sending again cannot fix (the server's
// 5xx answer, such as an unknown recipient or a refused login, or a
// message that cannot be built) has Retry false and counts as
// bus.IsPermanent; any other, ctx ending included, is worth a retry. Error texts hold neither the
// password nor the recipient's address.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg, err := Build(s.cfg.From, m, time.Now())
	if err != nil {
		return &bus.ProviderError{Text: s.scrub("build mail: "+err.Error(), m.To), Err: err}
	}

	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.Timeout,
		fmt.Errorf("sending took longer than %v: %w", s.cfg.Timeout, context.DeadlineExceeded))
	defer cancel()

	// go-mail watches the context only while dialling; after that it
	// relies on per-command deadlines. Closing the connection when ctx
	// ends makes a server that stops answering mid-conversation return
	// at once, too.
	var stops []func() bool
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	dialer := &net.Dialer{}
	dial := func(dctx context.Context, network, address string) (net.Conn, error) {
		var conn net.Conn
		var err error
		if s.cfg.TLS == TLSImplicit {
			conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.tls}).DialContext(dctx, network, address)
		} else {
			conn, err = dialer.DialContext(dctx, network, address)
		}
		if err != nil {
			return nil, err
		}
		stops = append(stops, context.AfterFunc(ctx, func() { _ = conn.Close() }))
		return conn, nil
	}

	client, err := mail.NewClient(s.cfg.Host, s.clientOptions(dial)...)
	if err != nil {
		return &bus.ProviderError{Retry: true, Text: fmt.Sprintf("smtp client for %s: %v", s.addr, err), Err: err}
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		// IsDelivered: the server answered 250 to the message; what failed
		// is RSET or QUIT.
		return nil
	}
	return s.failure(ctx, err, m.To)
}

func (s *Sender) clientOptions(dial mail.DialContextFunc) []mail.Option {
	opts := []mail.Option{
		mail.WithPort(s.cfg.Port),
		// go-mail's own per-command deadline is only a backstop: ctx
		// ends first, closes the connection and says why.
		mail.WithTimeout(s.cfg.Timeout + time.Second),
		mail.WithTLSConfig(s.tls),
		// With a dial function of our own go-mail does not wrap the
		// connection in TLS for WithSSL, so implicit TLS happens in dial
		// and go-mail is told not to attempt STARTTLS on top.
		mail.WithDialContextFunc(dial),
	}
	switch s.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	default: // TLSImplicit, TLSNone
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.cfg.Username != "" {
		// go-mail refuses PLAIN without TLS unless the server is on
		// loopback, which New also insists on.
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthPlain),
			mail.WithUsername(s.cfg.Username),
			mail.WithPassword(s.cfg.Password))
	}
	return opts
}

// failure describes and classifies what went wrong in a send: a 5xx reply
// is refused for good, anything else (a 4xx, no answer) worth a retry.
func (s *Sender) failure(ctx context.Context, err error, rcpt string) error {
	code := replyCode(err)
	if cause := context.Cause(ctx); cause != nil && code == 0 {
		// What go-mail saw was the connection we closed; say why.
		err = fmt.Errorf("%w (%w)", cause, err)
	}
	return &bus.ProviderError{
		Status: code, Retry: code < 500 || code > 599,
		Text: s.scrub(fmt.Sprintf("send mail via %s: %v", s.addr, err), rcpt), Err: err,
	}
}

// replyCode is the SMTP reply code behind err, or 0 if the server did not
// answer with an error.
func replyCode(err error) int {
	// MAIL, RCPT and DATA failures are *mail.SendError, which keeps the
	// code but does not unwrap to the reply. Its IsTemp is no help: it is
	// false for a dropped connection as much as for a 5xx reply.
	var se *mail.SendError
	if errors.As(err, &se) && se.ErrorCode() != 0 {
		return se.ErrorCode()
	}
	// The greeting, EHLO, STARTTLS and AUTH fail with the bare reply.
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// scrub takes the password and the recipient's address out of text, in
// case a server or a library ever echoes them.
func (s *Sender) scrub(text, rcpt string) string {
	var pairs []string
	if s.cfg.Password != "" {
		pairs = append(pairs, s.cfg.Password, "[password]")
	}
	if rcpt != "" {
		if a, perr := netmail.ParseAddress(rcpt); perr == nil && a.Address != rcpt {
			pairs = append(pairs, a.Address, maskAddr(a.Address))
		}
		pairs = append(pairs, rcpt, maskAddr(rcpt))
	}
	for i := 0; i < len(pairs); i += 2 {
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// maskAddr keeps the domain, which tells an operator which provider
// refused, and hides the mailbox.
func maskAddr(addr string) string {
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		return "***" + addr[at:]
	}
	return "***"
}

// isLoopback matches the names for which go-mail allows AUTH PLAIN in
// clear text.
func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// FromConfig is the sender the config's SMTP provider describes, trusting
// its ca_file as well as the system's roots.
func FromConfig(s *config.SMTP) (*Sender, error) {
	mc := Config{
		Host: s.Host, Port: s.Port, From: s.From,
		Username: s.Username, Password: s.Password.Reveal(),
		TLS: TLSMode(s.TLS),
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp ca_file %s holds no PEM certificate", s.CAFile)
		}
		mc.RootCAs = pool
	}
	m, err := New(mc)
	if err != nil {
		return nil, fmt.Errorf("smtp provider: %w", err)
	}
	return m, nil
}
