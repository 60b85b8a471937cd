// Package check runs one check of one server and says, in words a person
// understands, why it failed.
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

// Outcome is what a check saw.
type Outcome struct {
	OK      bool
	Reason  string // why it failed; empty on success
	Latency time.Duration
}

// Runner runs checks. Its zero value is not usable; use New.
type Runner struct {
	http *http.Client
	dial net.Dialer
	// RootCAs, when set, replace the system roots for https checks (tests,
	// or a fleet behind a private CA).
	rootCAs *x509.CertPool
}

// New returns a Runner. rootCAs may be nil for the system's roots.
func New(rootCAs *x509.CertPool) *Runner {
	r := &Runner{rootCAs: rootCAs}
	tr := &http.Transport{
		Proxy:             nil, // a check measures the server, not a proxy in between
		DialContext:       r.dial.DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true, // every check opens its own connection, as a visitor would
	}
	r.http = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("more than 5 redirects")
			}
			return nil
		},
	}
	return r
}

// Run runs the check that target's scheme names, for at most timeout.
func (r *Runner) Run(ctx context.Context, target string, timeout time.Duration) Outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := r.run(ctx, target)
	o := Outcome{OK: err == nil, Latency: time.Since(start)}
	if err != nil {
		o.Reason = explain(ctx, err, timeout)
	}
	return o
}

func (r *Runner) run(ctx context.Context, target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("bad check URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		return r.httpCheck(ctx, u)
	case "tcp":
		return r.tcpCheck(ctx, u)
	}
	return fmt.Errorf("unsupported check %q", u.Scheme)
}

func (r *Runner) httpCheck(ctx context.Context, u *url.URL) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "Tocsin-Check/1")
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Read some of the body: a server that sends headers and then stalls is not up.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)); err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if resp.StatusCode >= 400 {
		return statusError(resp.StatusCode)
	}
	return nil
}

type statusError int

func (s statusError) Error() string {
	return fmt.Sprintf("expected a 2xx or 3xx status, got %d %s", int(s), http.StatusText(int(s)))
}

func (r *Runner) tcpCheck(ctx context.Context, u *url.URL) error {
	c, err := r.dial.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return err
	}
	return c.Close()
}

// explain turns an error into the words an on-call engineer reads at 3 a.m.
func explain(ctx context.Context, err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var hostErr x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var status statusError
	switch {
	case errors.As(err, &status):
		return status.Error()
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
