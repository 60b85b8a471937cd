// Package admin makes a running Tocsin process visible to the people and
// tools that operate it: an HTTP server with its metrics (/metrics), whether
// it runs (/healthz) and whether it is ready to do its work (/readyz), and
// each of its services registered with the NATS micro framework, so that
// `nats micro ls` lists them and `tocsin status` can ask each how it is.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
)

// Server serves a process's metrics and health.
type Server struct {
	m        *metrics.Metrics
	nc       *nats.Conn
	services []string
	log      *slog.Logger
	stopping atomic.Bool
	// limits bound each connection: the admin port is reached by whoever
	// shares the network, and a scraper that hangs must not hold a
	// connection for ever.
	limits httpguard.Limits
}

// New returns the admin server of a process connected by nc whose service
// instances ("verifier", "prober@lon1", …) are services.
func New(m *metrics.Metrics, nc *nats.Conn, services []string, log *slog.Logger) *Server {
	return &Server{m: m, nc: nc, services: services, log: log, limits: httpguard.DefaultLimits()}
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.Registry(), promhttp.HandlerOpts{
		// A scrape gets what could be gathered, not a 500, when one
		// collector fails.
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	return mux
}

// Stopping makes the process not ready from now on, so that whatever
// routes work to it stops doing so while it finishes what it has.
func (s *Server) Stopping() { s.stopping.Store(true) }

// NotReady lists why the process is not ready, one reason a line; empty
// when it is.
func (s *Server) NotReady() []string {
	var why []string
	if s.stopping.Load() {
		why = append(why, "shutting down")
	}
	if st := s.nc.Status(); st != nats.CONNECTED {
		why = append(why, "nats: "+strings.ToLower(st.String()))
	}
	return append(why, s.m.NotReady(s.services)...)
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	why := s.NotReady()
	if len(why) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(why, "\n"))
		return
	}
	fmt.Fprintln(w, "ready")
}

// Serve serves on ln until ctx ends, then shuts down within grace.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := httpguard.Server(s.Handler(), s.limits, s.log)
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(ln) }()
	select {
	case err := <-errs:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("admin server did not shut down cleanly", "err", err)
	}
	if err := <-errs; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}
