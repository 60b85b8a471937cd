// Package dnstest runs a real DNS server on loopback for tests, answering
// from a zone in master-file syntax the way a recursive resolver does: a
// CNAME comes with the records of its target when the zone has them, a
// name the zone does not hold is NXDOMAIN.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on loopback, over UDP and TCP on one port.
type Server struct {
	Addr string // host:port

	mu  sync.Mutex
	rrs map[string][]dns.RR // by lower-case owner name
}

// Start serves zone until the test ends.
func Start(t testing.TB, zone string) *Server {
	t.Helper()
	s := &Server{rrs: map[string][]dns.RR{}}
	s.Set(t, zone)
	pc, ln := ListenUDPAndTCP(t)
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// Set replaces the zone's records.
func (s *Server) Set(t testing.TB, zone string) {
	t.Helper()
	rrs := map[string][]dns.RR{}
	zp := dns.NewZoneParser(strings.NewReader(zone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		rrs[name] = append(rrs[name], rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.rrs = rrs
	s.mu.Unlock()
}

func (s *Server) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	if len(r.Question) == 1 {
		q := r.Question[0]
		s.mu.Lock()
		name := strings.ToLower(q.Name)
		if _, ok := s.rrs[name]; !ok {
			m.Rcode = dns.RcodeNameError
		}
		for hops := 0; hops < 10; hops++ {
			next := ""
			for _, rr := range s.rrs[name] {
				if rr.Header().Rrtype == q.Qtype {
					m.Answer = append(m.Answer, rr)
				} else if c, ok := rr.(*dns.CNAME); ok {
					m.Answer = append(m.Answer, rr)
					next = strings.ToLower(c.Target)
				}
			}
			if next == "" {
				break
			}
			name = next
		}
		s.mu.Unlock()
	}
	_ = w.WriteMsg(m)
}

// ListenUDPAndTCP binds a UDP and a TCP socket to the same loopback port,
// as a nameserver's port 53 is both. The port UDP is given may be taken
// for TCP; then another is tried.
func ListenUDPAndTCP(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l
		}
		pc.Close()
	}
	t.Fatal("no loopback port free for both UDP and TCP")
	return nil, nil
}
