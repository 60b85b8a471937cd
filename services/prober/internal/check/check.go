// Package check runs one check of one server, in the server's own protocol,
// and says, in words a person understands, why it failed.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// Spec is one check to run.
type Spec struct {
	URL     string // its scheme picks the protocol
	Timeout time.Duration
	// ExpectStatus is the HTTP status wanted; 0 accepts any below 400.
	ExpectStatus int
	// Keyword, if set, must appear in the first 64 KiB of an HTTP body.
	Keyword string
	// CertWarnDays warns of a certificate that expires within that many
	// days: the check passes with a warning, for the server still works.
	// An expired or invalid certificate fails it. 0 checks only validity.
	CertWarnDays int
	// StartTLS asks an SMTP check to upgrade with STARTTLS.
	StartTLS bool
	// Username and Password, if set, log in (FTP).
	Username, Password string
}

// Outcome is what a check saw.
type Outcome struct {
	OK      bool
	Reason  string // why it failed; empty on success
	Warning string // on success, what will fail if nobody acts
	Latency time.Duration
}

// checker runs one protocol's check; errors are explained by explain.
type checker func(ctx context.Context, r *Runner, u *url.URL, s Spec) error

// checkers maps a URL scheme to its check. Each file of the package
// contributes the protocols it implements; read-only after init.
var checkers = merge(
	map[string]checker{"http": httpCheck, "https": httpCheck, "tcp": tcpCheck},
	mailCheckers,
	netCheckers,
)

func merge(ms ...map[string]checker) map[string]checker {
	all := map[string]checker{}
	for _, m := range ms {
		for k, v := range m {
			all[k] = v
		}
	}
	return all
}

// Schemes is every scheme a check URL may have.
func Schemes() []string {
	var s []string
	for k := range checkers {
		s = append(s, k)
	}
	return s
}

// Runner runs checks. It is safe for concurrent use.
type Runner struct {
	dialer  net.Dialer
	rootCAs *x509.CertPool // nil: the system's roots
	now     func() time.Time
	http    *http.Client
	source  net.IP // nil: the system chooses
}

// New returns a Runner. rootCAs replace the system's roots for TLS checks
// when not nil (tests, or a fleet behind a private CA).
func New(rootCAs *x509.CertPool, opts ...Option) *Runner {
	r := &Runner{rootCAs: rootCAs, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	r.http = newHTTPClient(r)
	return r
}

// Option adjusts a Runner.
type Option func(*Runner)

// WithSource makes TCP and UDP checks leave from the address ip: a prober
// on a host with several addresses checks from the one its location
// stands for.
func WithSource(ip net.IP) Option {
	return func(r *Runner) {
		if ip != nil {
			r.dialer.LocalAddr = &net.TCPAddr{IP: ip}
			r.source = ip
		}
	}
}

// Run runs the check, for at most s.Timeout.
func (r *Runner) Run(ctx context.Context, s Spec) Outcome {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	err := r.run(ctx, s)
	o := Outcome{OK: err == nil, Latency: time.Since(start)}
	var w warning
	switch {
	case errors.As(err, &w):
		o.OK, o.Warning = true, string(w)
	case err != nil:
		o.Reason = explain(ctx, err, s.Timeout)
	}
	return o
}

// warning is what a check that passed saw coming: "certificate expires in
// 5 days". It is returned as an error so that it ends the check, and Run
// turns it into a success that says so.
type warning string

func (w warning) Error() string { return string(w) }

func (r *Runner) run(ctx context.Context, s Spec) error {
	u, err := url.Parse(s.URL)
	if err != nil {
		return failure("bad check URL: " + err.Error())
	}
	c, ok := checkers[u.Scheme]
	if !ok {
		return failure(fmt.Sprintf("unsupported check %q", u.Scheme))
	}
	return c(ctx, r, u, s)
}

// failure is a reason already in words for a person: "expected 200, got 503".
type failure string

func (f failure) Error() string { return string(f) }

// dial opens a TCP connection to u's host, on defaultPort when the URL has
// none, wrapped in TLS when implicitTLS; the connection's deadline is the
// context's, so every read and write of the check is bounded by it.
func (r *Runner) dial(ctx context.Context, u *url.URL, defaultPort string, implicitTLS bool) (net.Conn, error) {
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), defaultPort)
	}
	c, err := r.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if implicitTLS {
		return r.handshake(ctx, c, u.Hostname())
	}
	return c, nil
}

// tlsConfig is the client configuration for a server named host.
func (r *Runner) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: r.rootCAs, MinVersion: tls.VersionTLS12}
}

// handshake upgrades c to TLS and verifies the certificate.
func (r *Runner) handshake(ctx context.Context, c net.Conn, host string) (*tls.Conn, error) {
	tc := tls.Client(c, r.tlsConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// checkExpiry warns when the leaf certificate, valid now (the handshake
// verified it), expires within days.
func (r *Runner) checkExpiry(cs tls.ConnectionState, days int) error {
	if days <= 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	left := leaf.NotAfter.Sub(r.now())
	if left < time.Duration(days)*24*time.Hour {
		on := leaf.NotAfter.UTC().Format("2006-01-02 15:04 UTC")
		d := int(left.Hours() / 24)
		switch {
		case d <= 0:
			return warning(fmt.Sprintf("certificate expires in %s (%s)", left.Round(time.Minute), on))
		case d == 1:
			return warning(fmt.Sprintf("certificate expires in 1 day (%s)", on))
		}
		return warning(fmt.Sprintf("certificate expires in %d days (%s)", d, on))
	}
	return nil
}

func tcpCheck(ctx context.Context, r *Runner, u *url.URL, _ Spec) error {
	if u.Port() == "" {
		return failure("tcp check needs a port")
	}
	c, err := r.dial(ctx, u, "", false)
	if err != nil {
		return err
	}
	return c.Close()
}

// explain turns an error into the words an on-call engineer reads at 3 a.m.
func explain(ctx context.Context, err error, timeout time.Duration) string {
	var f failure
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &f):
		return f.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("timeout after %s", timeout)
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("no such host %s", dnsErr.Name)
		}
		return fmt.Sprintf("DNS lookup of %s failed: %s", dnsErr.Name, dnsErr.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &hostErr):
		return "certificate is not valid for this host: " + hostErr.Error()
	case errors.As(err, &unknownCA):
		return "certificate signed by an unknown authority"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "certificate has expired or is not yet valid"
		}
		return "invalid certificate: " + invalid.Error()
	case errors.As(err, &certErr):
		return "certificate not trusted: " + certErr.Err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "Get ") {
		msg = msg[i+2:] // drop the "Get "url": " prefix net/http adds
	}
	return msg
}
