package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the reverse proxies whose X-Forwarded-For is believed. Any
// client can write that header; only a proxy in front of the server, which
// appends the address it saw, makes it true.
type Proxies []netip.Prefix

// trusts reports whether a is one of the proxies.
func (p Proxies) trusts(a netip.Addr) bool {
	for _, pr := range p {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// Client is the address a request comes from: the TCP peer, or, when the
// peer is a trusted proxy, the last address in X-Forwarded-For that is not
// one of the proxies. Walking from the right, each hop vouches for the one
// before it only while it is trusted, so whatever a client wrote into the
// header itself is never reached. The zero Addr when the peer is not an IP
// address (a unix socket, a test's recorder).
func (p Proxies) Client(r *http.Request) netip.Addr {
	a := peer(r.RemoteAddr)
	if !a.IsValid() || !p.trusts(a) {
		return a
	}
	hops := forwarded(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0 && p.trusts(a); i-- {
		h := parseHop(hops[i])
		if !h.IsValid() {
			break // the proxy wrote it, so nothing left of it can be trusted
		}
		a = h
	}
	return a
}

// maxHops bounds the work one header makes: no real chain of proxies is
// longer.
const maxHops = 32

// forwarded splits the X-Forwarded-For values into hops, the last maxHops
// of them: those are the ones proxies appended.
func forwarded(values []string) []string {
	var hops []string
	for i := len(values) - 1; i >= 0 && len(hops) < maxHops; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0 && len(hops) < maxHops; j-- {
			hops = append(hops, strings.TrimSpace(parts[j]))
		}
	}
	// Collected from the right; put them back in order.
	for i, j := 0, len(hops)-1; i < j; i, j = i+1, j-1 {
		hops[i], hops[j] = hops[j], hops[i]
	}
	return hops
}

// parseHop reads one X-Forwarded-For entry: an address, with a port or in
// brackets as some proxies write it.
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}
	}
	return a.Unmap()
}

func peer(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

// Key is the client a limit counts by: an IPv4 address, or the /64 an IPv6
// address is in, since one subscriber is given a whole /64 and could
// otherwise be a new client with every request. "unknown" for the zero
// Addr, so that what has no address shares one limit rather than none.
func Key(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "unknown"
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}
