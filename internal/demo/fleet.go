package demo

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
)

// Server is a small server on 127.0.0.1 that can be switched off
// (connections refused) and on again at the same address: the demo's fleet
// and the tests' targets.
type Server struct {
	name   string
	banner string // for a banner protocol (SMTP, FTP): sent on connect; "" serves HTTP

	mu   sync.Mutex
	addr string
	l    net.Listener
	http *http.Server
	// blocked is a source address whose connections are cut (a lost
	// route), or "". It has no part in mu: Off holds mu while the server
	// it closes waits for an Accept that looks here.
	blocked atomic.Value
}

// Unreachable from the source address ip, until it is called with "".
func (s *Server) Unreachable(ip string) {
	s.blocked.Store(ip)
}

func (s *Server) isBlocked(host string) bool {
	ip, _ := s.blocked.Load().(string)
	return ip != "" && ip == host
}

// NewServer starts a server on loopback: one that sends banner on connect
// (SMTP, FTP, a database), or an HTTP server when banner is "".
func NewServer(name, banner string) (*Server, error) {
	s := &Server{name: name, banner: banner, addr: "127.0.0.1:0"}
	return s, s.On()
}

// Name is the server's id in the config.
func (s *Server) Name() string { return s.name }

// Addr is host:port, the same across off and on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Up reports whether the server is answering.
func (s *Server) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l != nil
}

// On starts answering again.
func (s *Server) On() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil {
		return nil
	}
	raw, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	l := Cutting{raw, s.isBlocked}
	s.l, s.addr = l, l.Addr().String()
	if s.banner == "" {
		s.http = httpguard.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "<h1>%s</h1>\n", s.name)
		}), httpguard.DefaultLimits(), nil)
		go s.http.Serve(l)
		return nil
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, s.banner+"\r\n")
			c.Close()
		}
	}()
	return nil
}

// Off stops answering: new connections are refused.
func (s *Server) Off() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		s.http.Close()
		s.http = nil
	} else if s.l != nil {
		s.l.Close()
	}
	s.l = nil
}

// Check is the check URL that watches this server.
func (s *Server) Check() string {
	if s.banner == "" {
		return "http://" + s.Addr() + "/"
	}
	return "tcp://" + s.Addr()
}

// Cutting is a listener that resets at once the connections from sources
// Cut says are cut off, as a broken route between a location and a server.
type Cutting struct {
	net.Listener
	Cut func(host string) bool
}

// Accept is the next connection from a source that is not cut off.
func (l Cutting) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if host, _, _ := net.SplitHostPort(c.RemoteAddr().String()); l.Cut(host) {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // a reset rather than a polite close
			}
			c.Close()
			continue
		}
		return c, nil
	}
}
