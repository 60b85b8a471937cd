package servertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// HAProxy is an HAProxy load balancer on loopback: an HTTP frontend in
// front of one backend, and its runtime API on a unix socket at level
// admin.
type HAProxy struct {
	Addr    string // 127.0.0.1:port, the frontend
	Socket  string // the runtime API ("stats socket"), level admin
	Backend string
	Dir     string // its configuration and log

	proc proc
}

// HAProxyServer is one server of the backend.
type HAProxyServer struct {
	Name string
	Addr string // host:port
}

// HAProxyOptions configure an HAProxy.
type HAProxyOptions struct {
	Backend string // default "web"
	Servers []HAProxyServer
	// Check turns HAProxy's own health checks on, every CheckInterval
	// (default 1s). Off, the default, HAProxy sends traffic to a server
	// until it is told otherwise: what it does is then all Tocsin's doing.
	Check         bool
	CheckInterval time.Duration
}

// Answers asks the frontend for / n times, one after another, and counts
// who answered: the body of a 200, the status of anything else.
func (h *HAProxy) Answers(t testing.TB, n int) map[string]int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	got := map[string]int{}
	for range n {
		resp, err := client.Get("http://" + h.Addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			got[resp.Status]++
			continue
		}
		got[string(body)]++
	}
	return got
}

// Log returns what HAProxy has written so far, for a failing test to show.
func (h *HAProxy) Log() string { return h.proc.log() }

// StartHAProxy starts haproxy, from the haproxy package, in the
// foreground with a configuration of its own: an HTTP frontend on a free
// loopback port, balancing round robin over the servers with neither
// retries nor redispatch, so that a request sent to a dead server fails
// rather than being quietly carried by another. It waits until the
// frontend and the runtime API accept connections.
func StartHAProxy(t testing.TB, opts HAProxyOptions) *HAProxy {
	t.Helper()
	bin := find(t, "haproxy", "haproxy")
	if opts.Backend == "" {
		opts.Backend = "web"
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = time.Second
	}
	if len(opts.Servers) == 0 {
		t.Fatalf("servertest: an HAProxy backend needs servers")
	}
	dir := workDir(t, "haproxy")
	h := &HAProxy{Addr: freePort(t), Socket: filepath.Join(dir, "admin.sock"), Backend: opts.Backend, Dir: dir, proc: proc{dir: dir}}

	var b strings.Builder
	fmt.Fprintf(&b, `global
    stats socket %s mode 600 level admin
    stats timeout 10s
    log stderr format raw local0 notice

defaults
    mode http
    log global
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    retries 0
    option http-server-close

frontend fe
    bind %s
    default_backend %s

backend %s
    balance roundrobin
`, h.Socket, h.Addr, opts.Backend, opts.Backend)
	for _, s := range opts.Servers {
		check := ""
		if opts.Check {
			check = fmt.Sprintf(" check inter %dms fall 1 rise 1", opts.CheckInterval.Milliseconds())
		}
		fmt.Fprintf(&b, "    server %s %s%s\n", s.Name, s.Addr, check)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	h.proc.run(t, bin, "-c", "-q", "-f", cfg)
	// -db: stay in the foreground, no daemon, no master process.
	h.proc.serve(t, syscall.SIGTERM, nil, []string{h.Addr}, bin, "-db", "-f", cfg)
	var err error
	if !wait.Until(context.Background(), startTimeout, func() bool {
		var c net.Conn
		if c, err = net.DialTimeout("unix", h.Socket, time.Second); err != nil {
			return false
		}
		c.Close()
		return true
	}) {
		t.Fatalf("servertest: haproxy runtime API not answering on %s after %s: %v\n%s", h.Socket, startTimeout, err, h.Log())
	}
	return h
}
