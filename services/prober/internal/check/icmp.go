package check

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpNotPermitted says what to change when the process may open neither
// kind of ICMP socket: the check can do nothing about it itself.
const icmpNotPermitted = "ICMP not permitted for this process: run as root, grant CAP_NET_RAW, or widen net.ipv4.ping_group_range"

// icmpCheck sends one echo request and waits for its reply: the check for a
// host that runs no service the prober can speak to, and the one that tells
// "the machine is gone" from "the service on it is down".
func icmpCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	host := u.Hostname()
	if host == "" {
		return failure("icmp check needs a host: icmp://host")
	}
	ip, err := r.resolveForPing(ctx, host)
	if err != nil {
		return err
	}
	return ping(ctx, ip, s.Timeout, listenICMP)
}

// resolveForPing picks the address to ping. With both families it takes
// IPv4, as a prober without an IPv6 route would otherwise call every
// dual-stack host unreachable.
func (r *Runner) resolveForPing(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	res := r.dialer.Resolver
	if res == nil {
		res = net.DefaultResolver
	}
	ips, err := res.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
	}
	return ips[0], nil
}

// pingListener opens an ICMP endpoint. It is icmp.ListenPacket but for
// tests, which need sockets that are refused or never answered without
// changing the machine they run on.
type pingListener func(network, address string) (net.PacketConn, error)

func listenICMP(network, address string) (net.PacketConn, error) {
	c, err := icmp.ListenPacket(network, address)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}

// icmpFamily holds what differs between ICMP for IPv4 and for IPv6.
type icmpFamily struct {
	pingNet, rawNet, any string
	proto                int // for icmp.ParseMessage
	request, reply       icmp.Type
}

var (
	icmpV4 = icmpFamily{"udp4", "ip4:icmp", "0.0.0.0", 1, ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply}
	icmpV6 = icmpFamily{"udp6", "ip6:ipv6-icmp", "::", 58, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply}
)

// ping sends one echo request to ip and waits for the matching reply until
// ctx ends; timeout only words the reason.
func ping(ctx context.Context, ip netip.Addr, timeout time.Duration, listen pingListener) error {
	fam := icmpV4
	if ip.Is6() {
		fam = icmpV6
	}
	c, raw, err := openPing(listen, fam)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	// The random payload is what makes a reply ours: on a ping socket the
	// kernel replaces the ID with its own, and a raw socket sees the
	// replies to every other process that pings.
	want := icmp.Echo{ID: rand.IntN(1 << 16), Seq: rand.IntN(1 << 16), Data: make([]byte, 16)}
	copy(want.Data, "tocsin")
	binary.BigEndian.PutUint64(want.Data[8:], rand.Uint64())
	msg := icmp.Message{Type: fam.request, Body: &want}
	b, err := msg.Marshal(nil) // the kernel fills in the ICMPv6 checksum
	if err != nil {
		return err
	}
	var dst net.Addr = &net.UDPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	if raw {
		dst = &net.IPAddr{IP: ip.AsSlice(), Zone: ip.Zone()}
	}
	if _, err := c.WriteTo(b, dst); err != nil {
		return pingErr(ctx, err, timeout)
	}

	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return pingErr(ctx, err, timeout)
		}
		m, err := icmp.ParseMessage(fam.proto, buf[:n])
		if err != nil {
			continue // not ours to judge: another process's traffic
		}
		if isEchoReply(m, fam.reply, want, raw) {
			return nil
		}
	}
}

// isEchoReply says whether m answers want. The ID is compared only on a raw
// socket: a ping socket rewrites it, and delivers to us only the replies
// that carry its own.
func isEchoReply(m *icmp.Message, reply icmp.Type, want icmp.Echo, raw bool) bool {
	e, ok := m.Body.(*icmp.Echo)
	switch {
	case m.Type != reply || !ok:
		return false
	case raw && e.ID != want.ID:
		return false
	}
	return e.Seq == want.Seq && bytes.Equal(e.Data, want.Data)
}

// openPing opens an unprivileged ping socket when the system allows it, as
// most distributions do for some groups, and a raw socket otherwise; raw is
// whether it had to.
func openPing(listen pingListener, fam icmpFamily) (c net.PacketConn, raw bool, err error) {
	c, err = listen(fam.pingNet, fam.any)
	if err == nil {
		return c, false, nil
	}
	if !socketRefused(err) {
		return nil, false, err
	}
	c, err = listen(fam.rawNet, fam.any)
	if err == nil {
		return c, true, nil
	}
	if socketRefused(err) {
		return nil, false, failure(icmpNotPermitted)
	}
	return nil, false, err
}

// socketRefused tells a socket this process may not open from one that
// failed for another reason. A ping socket is refused with EACCES outside
// net.ipv4.ping_group_range and with EPROTONOSUPPORT by a kernel built
// without them; a raw socket with EPERM without CAP_NET_RAW.
func socketRefused(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPROTONOSUPPORT)
}

// pingErr words an error of the echo exchange; a deadline means the host
// did not answer in time, which is the usual way a ping fails.
func pingErr(ctx context.Context, err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failure(fmt.Sprintf("no echo reply within %s", timeout))
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}
