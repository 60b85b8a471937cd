package check

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// canPing reports whether this process may open an ICMP socket of either
// kind, and why not.
func canPing(fam icmpFamily) error {
	c, _, err := openPing(listenICMP, fam)
	if err != nil {
		return err
	}
	return c.Close()
}

func TestICMP(t *testing.T) {
	if err := canPing(icmpV4); err != nil {
		// Root, or a system whose ping_group_range covers the test's
		// group, is needed to send a ping at all; CI runs as root.
		t.Skipf("cannot ping from this process: %v", err)
	}
	cases := []netCase{
		{name: "loopback", url: "icmp://127.0.0.1", ok: true},
		{name: "a name", url: "icmp://localhost", ok: true},
		{name: "no host", url: "icmp:///", reason: "icmp check needs a host: icmp://host"},
	}
	if canPing(icmpV6) == nil && hasIPv6Loopback() {
		cases = append(cases, netCase{name: "IPv6 loopback", url: "icmp://[::1]", ok: true})
	}
	runNetCases(t, cases)
}

func hasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// refuse is a pingListener for a process without the right to open the
// networks given; the rest it opens for real.
func refuse(errs map[string]error) pingListener {
	return func(network, address string) (net.PacketConn, error) {
		if err, ok := errs[network]; ok {
			return nil, os.NewSyscallError("socket", err)
		}
		return listenICMP(network, address)
	}
}

// silentConn sends nothing anywhere and never receives: a host that does
// not answer, without a packet leaving loopback. Reads block on a real UDP
// socket nobody writes to, so deadlines work as on an ICMP socket.
type silentConn struct{ net.PacketConn }

func (silentConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

func TestPingFailures(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name    string
		listen  pingListener
		timeout time.Duration
		reason  string // empty: the ping succeeds
	}{
		{
			name:   "neither socket permitted",
			listen: refuse(map[string]error{"udp4": syscall.EACCES, "ip4:icmp": syscall.EPERM}),
			reason: "ICMP not permitted for this process: run as root, grant CAP_NET_RAW, or widen net.ipv4.ping_group_range",
		},
		{
			name:   "kernel without ping sockets, no CAP_NET_RAW",
			listen: refuse(map[string]error{"udp4": syscall.EPROTONOSUPPORT, "ip4:icmp": syscall.EPERM}),
			reason: "ICMP not permitted for this process: run as root, grant CAP_NET_RAW, or widen net.ipv4.ping_group_range",
		},
		{
			name:   "other socket errors say what they are",
			listen: refuse(map[string]error{"udp4": syscall.EMFILE}),
			reason: "socket: too many open files",
		},
		{
			name: "no reply",
			listen: func(string, string) (net.PacketConn, error) {
				c, err := net.ListenPacket("udp", "127.0.0.1:0")
				return silentConn{c}, err
			},
			timeout: 200 * time.Millisecond,
			reason:  "no echo reply within 200ms",
		},
		{
			// Root may always open a raw socket, where the kernel keeps
			// the ID we chose.
			name:   "raw socket when ping sockets are refused",
			listen: refuse(map[string]error{"udp4": syscall.EACCES}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.reason == "" {
				c, err := listenICMP("ip4:icmp", "0.0.0.0")
				if err != nil {
					t.Skipf("no raw socket for this process: %v", err)
				}
				c.Close()
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			err := ping(ctx, loopback, timeout, tt.listen)
			var got string
			if err != nil {
				got = explain(ctx, err, timeout)
			}
			if got != tt.reason {
				t.Errorf("ping = %q, want %q", got, tt.reason)
			}
			if d := time.Since(start); d > timeout+time.Second {
				t.Errorf("ping took %v for a %v timeout", d, timeout)
			}
		})
	}
}

func TestPingCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	listen := func(string, string) (net.PacketConn, error) {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		return silentConn{c}, err
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := ping(ctx, netip.MustParseAddr("127.0.0.1"), time.Minute, listen)
	if err != context.Canceled {
		t.Errorf("ping = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a cancelled ping took %v to return", d)
	}
}

func TestIsEchoReply(t *testing.T) {
	want := icmp.Echo{ID: 4242, Seq: 7, Data: []byte("tocsin\x00\x00abcdefgh")}
	reply := func(typ icmp.Type, id, seq int, data string) *icmp.Message {
		return &icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte(data)}}
	}
	tests := []struct {
		name string
		m    *icmp.Message
		raw  bool
		want bool
	}{
		{"raw socket, ours", reply(ipv4.ICMPTypeEchoReply, 4242, 7, string(want.Data)), true, true},
		{"raw socket, another pinger's ID", reply(ipv4.ICMPTypeEchoReply, 999, 7, string(want.Data)), true, false},
		{"ping socket, ID rewritten by the kernel", reply(ipv4.ICMPTypeEchoReply, 999, 7, string(want.Data)), false, true},
		{"another sequence", reply(ipv4.ICMPTypeEchoReply, 4242, 8, string(want.Data)), true, false},
		{"another payload", reply(ipv4.ICMPTypeEchoReply, 4242, 7, "tocsin\x00\x00zzzzzzzz"), true, false},
		{"our own request, seen on loopback", reply(ipv4.ICMPTypeEcho, 4242, 7, string(want.Data)), true, false},
		{"ICMPv6 reply where ICMPv4 was asked", reply(ipv6.ICMPTypeEchoReply, 4242, 7, string(want.Data)), true, false},
		{"not an echo", &icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.RawBody{Data: want.Data}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isEchoReply(tt.m, ipv4.ICMPTypeEchoReply, want, tt.raw); got != tt.want {
				t.Errorf("isEchoReply = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSocketRefused(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{os.NewSyscallError("socket", syscall.EACCES), true},
		{os.NewSyscallError("socket", syscall.EPERM), true},
		{&net.OpError{Op: "listen", Net: "ip4:icmp", Err: os.NewSyscallError("socket", syscall.EPERM)}, true},
		{os.NewSyscallError("socket", syscall.EPROTONOSUPPORT), true},
		{os.NewSyscallError("socket", syscall.EMFILE), false},
		{os.NewSyscallError("bind", syscall.EADDRNOTAVAIL), false},
	} {
		if got := socketRefused(tt.err); got != tt.want {
			t.Errorf("socketRefused(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
