// Package haproxy speaks HAProxy's runtime API (the "stats socket"), over a
// unix socket or TCP: one command per connection, the answer read to the
// end. It sets a server's administrative state and reads the servers of a
// backend back, so that a change is confirmed rather than assumed.
package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// Client talks to one HAProxy's runtime API.
type Client struct {
	network, address string
	timeout          time.Duration
}

// New returns a client for the runtime API at address: an absolute path is
// a unix socket, anything else host:port. Every command is bounded by
// timeout as well as by its context.
func New(address string, timeout time.Duration) *Client {
	network := "tcp"
	if strings.HasPrefix(address, "/") {
		network = "unix"
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Client{network: network, address: address, timeout: timeout}
}

// Address is where the runtime API is.
func (c *Client) Address() string { return c.address }

// maxAnswer bounds what one command may answer; a backend of thousands of
// servers answers "show servers state" in well under this.
const maxAnswer = 16 << 20

// Command sends one command and returns HAProxy's answer. An error from
// reaching HAProxy is worth a retry; what HAProxy answers is the caller's
// to judge.
func (c *Client) Command(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n;") {
		return "", bus.Permanent(fmt.Errorf("haproxy command %q holds a line break or ';'", cmd))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.network, c.address)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API at %s: send %q: %w", c.address, verb(cmd), err)
	}
	// Without "prompt", HAProxy answers one command and closes.
	b, err := io.ReadAll(io.LimitReader(conn, maxAnswer))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", c.timeout)
		}
		return "", fmt.Errorf("haproxy runtime API at %s: %q: %w", c.address, verb(cmd), err)
	}
	return string(b), nil
}

// verb is the command without its arguments' values, for errors.
func verb(cmd string) string {
	f := strings.Fields(cmd)
	return strings.Join(f[:min(len(f), 2)], " ")
}

// State is a server's administrative state as "set server … state" takes it.
type State string

// The administrative states.
const (
	Ready State = "ready" // takes traffic
	Maint State = "maint" // takes no traffic at all
	Drain State = "drain" // finishes what it has, takes no new sessions
)

// SetState sets the administrative state of backend/server.
func (c *Client) SetState(ctx context.Context, backend, server string, s State) error {
	if err := checkName(backend); err != nil {
		return err
	}
	if err := checkName(server); err != nil {
		return err
	}
	answer, err := c.Command(ctx, fmt.Sprintf("set server %s/%s state %s", backend, server, s))
	if err != nil {
		return err
	}
	// Success is an empty answer; anything else is HAProxy refusing:
	// "No such server.", "No such backend.", "Permission denied" (a
	// socket below level admin). Asking again will not change its mind.
	if msg := strings.TrimSpace(answer); msg != "" {
		return bus.Permanent(fmt.Errorf("haproxy at %s refused to set %s/%s %s: %s", c.address, backend, server, s, firstLine(msg)))
	}
	return nil
}

// Server is one server of a backend as "show servers state" shows it.
type Server struct {
	Backend string
	Name    string
	Addr    string
	// OpState is HAProxy's view of its health: 0 stopped, 1 starting,
	// 2 running, 3 stopping.
	OpState int
	// AdminState holds the administrative flags: 0x01 forced maintenance
	// (set server … state maint), 0x02 inherited from a tracked server,
	// 0x04 disabled in the configuration, 0x08 forced drain, 0x10
	// inherited drain, 0x20 maintenance because its address did not
	// resolve, 0x40 maintenance because its hostname did not resolve.
	AdminState int
}

// The administrative flags.
const (
	AdminForcedMaint    = 0x01
	AdminInheritedMaint = 0x02
	AdminConfigMaint    = 0x04
	AdminForcedDrain    = 0x08
	AdminInheritedDrain = 0x10
	AdminResolveMaint   = 0x20
	AdminHostnameMaint  = 0x40
	adminAnyMaint       = AdminForcedMaint | AdminInheritedMaint | AdminConfigMaint | AdminResolveMaint | AdminHostnameMaint
	adminAnyDrain       = AdminForcedDrain | AdminInheritedDrain
)

// InMaint reports whether the server takes no traffic for any
// administrative reason.
func (s Server) InMaint() bool { return s.AdminState&adminAnyMaint != 0 }

// Serving reports whether the server takes new traffic: not in maintenance,
// not draining, and not judged down by HAProxy's own health checks.
func (s Server) Serving() bool {
	return s.AdminState&(adminAnyMaint|adminAnyDrain) == 0 && s.OpState != 0
}

// Is reports whether the server is in state st as far as SetState can make
// it: maint is forced maintenance, ready neither forced maintenance nor
// forced drain.
func (s Server) Is(st State) bool {
	switch st {
	case Maint:
		return s.AdminState&AdminForcedMaint != 0
	case Drain:
		return s.AdminState&AdminForcedDrain != 0 && s.AdminState&AdminForcedMaint == 0
	case Ready:
		return s.AdminState&(AdminForcedMaint|AdminConfigMaint|AdminForcedDrain) == 0
	}
	return false
}

// Servers reads the servers of backend.
func (c *Client) Servers(ctx context.Context, backend string) ([]Server, error) {
	if err := checkName(backend); err != nil {
		return nil, err
	}
	answer, err := c.Command(ctx, "show servers state "+backend)
	if err != nil {
		return nil, err
	}
	servers, err := ParseServersState(answer)
	if err != nil {
		return nil, fmt.Errorf("haproxy at %s, backend %s: %w", c.address, backend, err)
	}
	return servers, nil
}

// Server reads one server of backend.
func (c *Client) Server(ctx context.Context, backend, name string) (Server, error) {
	servers, err := c.Servers(ctx, backend)
	if err != nil {
		return Server{}, err
	}
	for _, s := range servers {
		if s.Name == name {
			return s, nil
		}
	}
	return Server{}, bus.Permanent(fmt.Errorf("haproxy at %s has no server %s in backend %s", c.address, name, backend))
}

// ParseServersState reads the answer to "show servers state": a version
// line, a header line naming the columns, and a line per server.
func ParseServersState(answer string) ([]Server, error) {
	sc := bufio.NewScanner(strings.NewReader(answer))
	sc.Buffer(make([]byte, 64<<10), maxAnswer)
	if !sc.Scan() {
		return nil, errors.New("empty answer to show servers state")
	}
	if v := strings.TrimSpace(sc.Text()); v != "1" {
		// "Can't find backend." and the like: refused for good.
		return nil, bus.Permanent(fmt.Errorf("show servers state: %s", firstLine(v)))
	}
	var col map[string]int
	var servers []Server
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			col = map[string]int{}
			for i, name := range strings.Fields(strings.TrimPrefix(line, "#")) {
				col[name] = i
			}
			continue
		}
		if col == nil {
			return nil, errors.New("show servers state: no header line")
		}
		f := strings.Fields(line)
		field := func(name string) (string, error) {
			i, ok := col[name]
			if !ok || i >= len(f) {
				return "", fmt.Errorf("show servers state: no %s in %q", name, line)
			}
			return f[i], nil
		}
		var s Server
		var err error
		var op, adm string
		if s.Backend, err = field("be_name"); err != nil {
			return nil, err
		}
		if s.Name, err = field("srv_name"); err != nil {
			return nil, err
		}
		if s.Addr, err = field("srv_addr"); err != nil {
			return nil, err
		}
		if op, err = field("srv_op_state"); err != nil {
			return nil, err
		}
		if adm, err = field("srv_admin_state"); err != nil {
			return nil, err
		}
		if s.OpState, err = strconv.Atoi(op); err != nil {
			return nil, fmt.Errorf("show servers state: srv_op_state %q", op)
		}
		if s.AdminState, err = strconv.Atoi(adm); err != nil {
			return nil, fmt.Errorf("show servers state: srv_admin_state %q", adm)
		}
		servers = append(servers, s)
	}
	return servers, sc.Err()
}

func checkName(s string) error {
	if s == "" || strings.ContainsAny(s, " \t\r\n/;#") {
		return bus.Permanent(fmt.Errorf("%q is not an HAProxy name", s))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}
