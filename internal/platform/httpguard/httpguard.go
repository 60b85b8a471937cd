// Package httpguard bounds what a client can make one of Tocsin's HTTP
// servers spend, and says who the client is. Every server Tocsin runs faces
// someone it does not trust: the status page faces the internet, the
// notifier's acknowledgement links and webhooks too, the admin port whoever
// shares its network. Each of them needs the same few guards, kept here so
// that they are the same everywhere: time and header size per connection
// (Server), the client's address behind the proxies it names (Proxies),
// requests per client (Limiter), streams per client (Streams), and the
// headers that keep a page from being framed or sniffed (SecureHeaders).
package httpguard

import (
	"log/slog"
	"net/http"
	"time"
)

// Limits bound one connection: how long a client may take to send its
// headers and its request, how long the server may take to answer, how long
// an idle keep-alive connection is kept, and how large the headers may be.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
}

// DefaultLimits suit a page and an API on the internet: a browser on a slow
// phone sends its headers within seconds and its largest request (an admin
// update, 64 KiB at most) within half a minute, and reads the largest
// document (summary.json of a large fleet) within a minute. Streams that
// last longer set a write deadline per event instead.
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// orDefault fills what l leaves zero from DefaultLimits: a zero limit would
// mean none at all.
func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// Server is an http.Server for h bounded by l (zero fields take the
// defaults). What the server itself would print about clients (a TLS
// handshake cut short, a bad request line) goes to log at debug level: a
// client on the internet must not be able to fill the log.
func Server(h http.Handler, l Limits, log *slog.Logger) *http.Server {
	l = l.orDefault()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
	if log != nil {
		srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	}
	return srv
}
