package check

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/tocsin-alarm/tocsin/internal/testkit/dnstest"
)

// testZone is example.net as its authoritative server would serve it, with
// a few names that misbehave on purpose.
const testZone = `
example.net.              300 IN SOA   ns1.example.net. hostmaster.example.net. 1 7200 3600 1209600 300
example.net.              300 IN NS    ns1.example.net.
example.net.              300 IN NS    ns2.example.net.
example.net.              300 IN A     192.0.2.10
example.net.              300 IN AAAA  2001:db8::10
example.net.              300 IN MX    10 mx1.example.net.
example.net.              300 IN MX    20 mx2.example.net.
example.net.              300 IN TXT   "v=spf1 mx -all"
example.net.              300 IN TXT   "google-site-verification=abc123"
www.example.net.          300 IN CNAME example.net.
mx1.example.net.          300 IN A     192.0.2.25
mx2.example.net.          300 IN A     192.0.2.26
10.2.0.192.in-addr.arpa.  300 IN PTR   example.net.
`

// zoneServer answers from testZone over UDP and TCP on one loopback port,
// as a real nameserver does: answers too big for the client's UDP buffer
// are truncated, and broken.example.net gets SERVFAIL.
type zoneServer struct {
	addr string
	rrs  map[string][]dns.RR
	tcp  atomic.Int32 // queries that came over TCP
}

func startZoneServer(t *testing.T) *zoneServer {
	t.Helper()
	z := &zoneServer{rrs: map[string][]dns.RR{}}
	zp := dns.NewZoneParser(strings.NewReader(testZone), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.add(rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	// Forty TXT records of 60 bytes: far more than 1232 bytes, so they
	// come back over UDP truncated.
	for i := range 40 {
		rr, err := dns.NewRR(fmt.Sprintf(`big.example.net. 300 IN TXT "record %02d %s"`, i, strings.Repeat("x", 50)))
		if err != nil {
			t.Fatal(err)
		}
		z.add(rr)
	}

	pc, l := dnstest.ListenUDPAndTCP(t)
	z.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: l, Handler: z}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("dns server did not start")
		}
	}
	return z
}

func (z *zoneServer) add(rr dns.RR) {
	name := strings.ToLower(rr.Header().Name)
	z.rrs[name] = append(z.rrs[name], rr)
}

func (z *zoneServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	switch rrs, ok := z.rrs[name]; {
	case name == "broken.example.net.":
		m.Rcode = dns.RcodeServerFailure
	case !ok:
		m.Rcode = dns.RcodeNameError
		m.Ns = z.rrs["example.net."][:1] // the SOA, for negative caching
	default:
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
			if t == dns.TypeCNAME && q.Qtype != dns.TypeCNAME {
				target := strings.ToLower(rr.(*dns.CNAME).Target)
				m.Answer = append(m.Answer, rr)
				for _, rr := range z.rrs[target] {
					if rr.Header().Rrtype == q.Qtype {
						m.Answer = append(m.Answer, rr)
					}
				}
			}
		}
	}
	if w.RemoteAddr().Network() == "tcp" {
		z.tcp.Add(1)
	} else {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// udpServer answers every datagram with what reply makes of it; nil sends
// nothing back.
func udpServer(t *testing.T, reply func(query []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := reply(buf[:n]); b != nil {
				pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// closedUDPPort returns a loopback UDP address nothing listens on.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestDNS(t *testing.T) {
	t.Parallel()
	z := startZoneServer(t)
	ns := "dns://" + z.addr
	silent := udpServer(t, func([]byte) []byte { return nil })
	// An answer with the query's ID whose one record breaks off after its
	// name, as a broken middlebox might send.
	garbled := udpServer(t, func(q []byte) []byte { return append(q[:2:2], 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1) })

	// Truncated, and nothing listens on the same port over TCP.
	noTCP := udpServer(t, func(q []byte) []byte { return append(q[:2:2], 0x87, 0x80, 0, 0, 0, 0, 0, 0, 0, 0) })

	runNetCases(t, []netCase{
		{name: "A by default", url: ns + "/example.net", ok: true},
		{name: "A expected", url: ns + "/example.net?type=A&expect=192.0.2.10", ok: true},
		{name: "A through a CNAME", url: ns + "/www.example.net?expect=192.0.2.10", ok: true},
		{name: "A not the one expected", url: ns + "/example.net?expect=192.0.2.99",
			reason: "expected 192.0.2.99 among the A answers, got 192.0.2.10"},
		{name: "AAAA in another spelling", url: ns + "/example.net?type=aaaa&expect=2001:DB8:0:0::10", ok: true},
		{name: "MX in any case with the root's dot", url: ns + "/example.net?type=MX&expect=MX2.Example.NET.", ok: true},
		{name: "MX not the one expected", url: ns + "/example.net?type=MX&expect=mx3.example.net",
			reason: "expected mx3.example.net among the MX answers, got mx1.example.net, mx2.example.net"},
		{name: "NS", url: ns + "/example.net?type=NS&expect=ns2.example.net", ok: true},
		{name: "TXT by content", url: ns + "/example.net?type=TXT&expect=v%3Dspf1+mx+-all", ok: true},
		{name: "TXT not the one expected", url: ns + "/example.net?type=TXT&expect=v%3Dspf1+-all",
			reason: `expected "v=spf1 -all" among the TXT answers, got "v=spf1 mx -all", "google-site-verification=abc123"`},
		{name: "CNAME", url: ns + "/www.example.net?type=CNAME&expect=example.net", ok: true},
		{name: "SOA", url: ns + "/example.net?type=SOA&expect=ns1.example.net", ok: true},
		{name: "PTR of an address", url: ns + "/192.0.2.10?type=PTR&expect=example.net", ok: true},
		{name: "PTR of the reverse name", url: ns + "/10.2.0.192.in-addr.arpa?type=PTR", ok: true},
		{name: "NXDOMAIN", url: ns + "/nowhere.example.net", reason: "NXDOMAIN for nowhere.example.net"},
		{name: "no record of the type", url: ns + "/mx1.example.net?type=MX", reason: "no MX answer for mx1.example.net"},
		{name: "SERVFAIL", url: ns + "/broken.example.net", reason: "SERVFAIL from " + z.addr},
		{name: "nobody on the port", url: "dns://" + closedUDPPort(t) + "/example.net", reason: "connection refused"},
		{name: "no answer", url: "dns://" + silent + "/example.net", timeout: 300 * time.Millisecond, reason: "timeout after 300ms"},
		{name: "garbled answer", url: "dns://" + garbled + "/example.net",
			reason: "unreadable DNS answer from " + garbled + ": overflow unpacking uint16"},
		{name: "truncated and no TCP", url: "dns://" + noTCP + "/example.net",
			reason: "answer too large for UDP, and over TCP: connection refused"},
		{name: "no name", url: ns + "/", reason: "dns check needs a name to look up: dns://server/name"},
		{name: "no server", url: "dns:///example.net", reason: "dns check needs a server to ask: dns://server/name"},
		{name: "unknown type", url: ns + "/example.net?type=BOGUS", reason: `unknown DNS record type "BOGUS"`},
		{name: "expect not an address", url: ns + "/example.net?expect=mx1", reason: "expect=mx1 is not an IP address"},
	})

	t.Run("truncated over UDP, whole over TCP", func(t *testing.T) {
		before := z.tcp.Load()
		// The last record cannot fit in a UDP answer.
		checkOutcome(t, New(nil), netCase{url: ns + "/big.example.net?type=TXT&expect=record+39+" + strings.Repeat("x", 50), ok: true})
		if z.tcp.Load() == before {
			t.Error("the check did not retry over TCP")
		}
	})
	t.Run("many answers listed briefly", func(t *testing.T) {
		checkOutcome(t, New(nil), netCase{url: ns + "/big.example.net?type=TXT&expect=nothing",
			reason: `expected "nothing" among the TXT answers, got "record 00 ` + strings.Repeat("x", 50) + `", "record 01 ` + strings.Repeat("x", 50) +
				`", "record 02 ` + strings.Repeat("x", 50) + `", "record 03 ` + strings.Repeat("x", 50) + `", "record 04 ` + strings.Repeat("x", 50) + `" and 35 more`})
	})
}
