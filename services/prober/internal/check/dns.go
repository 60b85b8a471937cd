package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsUDPSize is the EDNS0 buffer size offered: the one DNS Flag Day 2020
// settled on, small enough to avoid IP fragmentation on any path, so a
// large answer comes back truncated and is fetched again over TCP instead of
// being lost in fragments.
const dnsUDPSize = 1232

// dnsCheck asks one named server, not the system's resolver, because the
// server is what is being checked: an authoritative nameserver of the fleet
// that answers SERVFAIL is down even when a resolver's cache still answers
// for it.
//
// The URL is dns://server[:53]/name?type=MX&expect=value. The server is up
// when it answers NOERROR with at least one record of the type asked for
// and, with expect, one of them holds that value.
func dnsCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	q, err := parseDNSQuery(u)
	if err != nil {
		return err
	}
	m := new(dns.Msg)
	m.SetQuestion(q.fqdn, q.qtype)
	m.SetEdns0(dnsUDPSize, false)

	resp, err := q.exchange(ctx, r, m, "udp")
	if err != nil {
		return err
	}
	if resp.Truncated {
		// Resolvers retry over TCP too, so a server whose TCP is blocked
		// fails exactly the lookups with large answers: worth saying so.
		if resp, err = q.exchange(ctx, r, m, "tcp"); err != nil {
			return failure("answer too large for UDP, and over TCP: " + explain(ctx, err, s.Timeout))
		}
	}
	return q.judge(resp)
}

// dnsQuery is a dns:// URL taken apart and checked.
type dnsQuery struct {
	server string // host:port to ask
	shown  string // the server as the URL names it, for reasons
	fqdn   string // the name asked for, with its trailing dot
	name   string // the name as a person writes it
	qtype  uint16
	expect string // normalised by normalise; "" when any answer will do
}

func parseDNSQuery(u *url.URL) (dnsQuery, error) {
	q := dnsQuery{shown: u.Host, server: u.Host}
	if u.Hostname() == "" {
		return q, failure("dns check needs a server to ask: dns://server/name")
	}
	if u.Port() == "" {
		q.server = net.JoinHostPort(u.Hostname(), "53")
	}
	q.name = strings.TrimSuffix(strings.Trim(u.Path, "/"), ".")
	if q.name == "" {
		return q, failure("dns check needs a name to look up: dns://server/name")
	}
	typ := strings.ToUpper(u.Query().Get("type"))
	if typ == "" {
		typ = "A"
	}
	qtype, ok := dns.StringToType[typ]
	if !ok {
		return q, failure(fmt.Sprintf("unknown DNS record type %q", typ))
	}
	q.qtype = qtype
	// A PTR check is naturally written with the address it is about.
	if ip, err := netip.ParseAddr(q.name); err == nil && qtype == dns.TypePTR {
		rev, err := dns.ReverseAddr(ip.String())
		if err != nil {
			return q, failure(fmt.Sprintf("cannot reverse %s: %s", q.name, err))
		}
		q.fqdn = rev
	} else {
		if _, ok := dns.IsDomainName(q.name); !ok {
			return q, failure(fmt.Sprintf("%q is not a domain name", q.name))
		}
		q.fqdn = dns.Fqdn(q.name)
	}
	if e := u.Query().Get("expect"); e != "" {
		if qtype == dns.TypeA || qtype == dns.TypeAAAA {
			if _, err := netip.ParseAddr(e); err != nil {
				return q, failure(fmt.Sprintf("expect=%s is not an IP address", e))
			}
		}
		q.expect = normalise(qtype, e)
	}
	return q, nil
}

// exchange sends m to the server over network and waits for the answer, for
// no longer than ctx allows.
func (q dnsQuery) exchange(ctx context.Context, r *Runner, m *dns.Msg, network string) (*dns.Msg, error) {
	d := r.dialer
	if r.source != nil && strings.HasPrefix(network, "udp") {
		d.LocalAddr = &net.UDPAddr{IP: r.source}
	}
	c := &dns.Client{Net: network, Dialer: &d}
	// Without a timeout of its own the client gives up after 2 seconds,
	// which a longer check timeout would then misreport.
	if dl, ok := ctx.Deadline(); ok {
		c.Timeout = time.Until(dl)
	}
	conn, err := c.DialContext(ctx, q.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client watches only the deadline; closing the connection makes a
	// cancelled check stop waiting too.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	var dnsErr *dns.Error
	if errors.As(err, &dnsErr) {
		return nil, failure(fmt.Sprintf("unreadable DNS answer from %s: %s", q.shown, strings.TrimPrefix(dnsErr.Error(), "dns: ")))
	}
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// judge says whether resp is the answer the check wants.
func (q dnsQuery) judge(resp *dns.Msg) error {
	typ := dns.TypeToString[q.qtype]
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return failure(fmt.Sprintf("NXDOMAIN for %s", q.name))
	default:
		rcode, ok := dns.RcodeToString[resp.Rcode]
		if !ok {
			rcode = fmt.Sprintf("rcode %d", resp.Rcode)
		}
		return failure(fmt.Sprintf("%s from %s", rcode, q.shown))
	}
	var got []string
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == q.qtype && rr.Header().Class == dns.ClassINET {
			got = append(got, rrValue(rr))
		}
	}
	if len(got) == 0 {
		return failure(fmt.Sprintf("no %s answer for %s", typ, q.name))
	}
	if q.expect == "" {
		return nil
	}
	for _, v := range got {
		if normalise(q.qtype, v) == q.expect {
			return nil
		}
	}
	return failure(fmt.Sprintf("expected %s among the %s answers, got %s", show(q.qtype, q.expect), typ, listValues(q.qtype, got)))
}

// rrValue is the part of rr a person would name in expect: the address, the
// target host, the text.
func rrValue(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	case *dns.MX:
		return rr.Mx
	case *dns.NS:
		return rr.Ns
	case *dns.CNAME:
		return rr.Target
	case *dns.PTR:
		return rr.Ptr
	case *dns.SOA:
		return rr.Ns // the zone's primary nameserver
	case *dns.TXT:
		// One TXT record may be split into strings of at most 255 bytes;
		// what it says is their concatenation (RFC 7208 §3.3).
		return strings.Join(rr.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// normalise makes equal the spellings of one value: host names in any case
// and with or without the root's dot, IP addresses in any form.
func normalise(qtype uint16, v string) string {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		if ip, err := netip.ParseAddr(v); err == nil {
			return ip.Unmap().String()
		}
	case dns.TypeMX, dns.TypeNS, dns.TypeCNAME, dns.TypePTR, dns.TypeSOA:
		return strings.ToLower(strings.TrimSuffix(v, "."))
	}
	return v
}

// show writes a value for a reason: host names without the root's dot,
// text quoted so that spaces and commas inside it stay readable.
func show(qtype uint16, v string) string {
	if qtype == dns.TypeTXT {
		return fmt.Sprintf("%q", v)
	}
	return strings.TrimSuffix(v, ".")
}

// listValues lists what the server answered, at most 5 of them, so that a
// reason stays one line even for a name with many addresses.
func listValues(qtype uint16, vs []string) string {
	const most = 5
	shown := make([]string, 0, most)
	for i, v := range vs {
		if i == most {
			break
		}
		shown = append(shown, show(qtype, v))
	}
	s := strings.Join(shown, ", ")
	if len(vs) > most {
		s += fmt.Sprintf(" and %d more", len(vs)-most)
	}
	return s
}
