package admin

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/slowconn"
)

// The admin port as someone on the same network sees it: connections that
// never finish or sit idle are closed, and huge headers refused.

// serve runs an admin server on loopback, with limits if not nil, and
// returns its address.
func serve(t *testing.T, limits *httpguard.Limits) string {
	t.Helper()
	b := bustest.New(t)
	s := New(metrics.New(), b.NC, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if limits != nil {
		s.limits = *limits
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})
	return ln.Addr().String()
}

var short = httpguard.Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond}

// TestAdminSlowHeadersCut: a client sending its headers a byte at a time
// is cut off at the header timeout.
func TestAdminSlowHeadersCut(t *testing.T) {
	t.Parallel()
	c := slowconn.Dial(t, serve(t, &short), "")
	request := "GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("x", 1000) + "\r\n\r\n"
	slowconn.TrickleCut(t, c, request)
}

// TestAdminIdleConnectionClosed: a keep-alive connection left idle after a
// scrape is closed at the idle timeout.
func TestAdminIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	c := slowconn.Dial(t, serve(t, &short), "")
	slowconn.IdleClosed(t, c, "/healthz", http.StatusOK, short.IdleTimeout)
}

// TestAdminHugeHeaderRefused: a 1 MB header gets 431, with the limits a
// server has unless told otherwise.
func TestAdminHugeHeaderRefused(t *testing.T) {
	t.Parallel()
	c := slowconn.Dial(t, serve(t, nil), "")
	if got := slowconn.HugeHeader(t, c, "/healthz", 1<<20); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 1 MB header: %d, want 431", got)
	}
}
