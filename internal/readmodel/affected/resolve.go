// Package affected answers the question support staff are asked most
// during an outage: is this customer's site or mail served by a box that
// is in trouble? It resolves the customer's name (its addresses, following
// CNAMEs, and its MX hosts' addresses), resolves the check host of every
// configured server the same way, matches them by address, and says per
// matched server what Tocsin knows of it now. The command line and the
// status page's admin API both answer with it.
package affected

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver looks names up at one DNS server, itself, with a timeout on
// every query: what the customer's name resolves to is what the world
// sees, not what a local cache held.
type Resolver struct {
	Addr    string        // host:port of the DNS server
	Timeout time.Duration // per query; 5s when zero
}

// SystemResolver is the first name server of /etc/resolv.conf.
func SystemResolver() (*Resolver, error) {
	return resolverFrom("/etc/resolv.conf")
}

func resolverFrom(path string) (*Resolver, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the system's resolver: %w", err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("%s names no name server", path)
	}
	return &Resolver{Addr: net.JoinHostPort(cc.Servers[0], cc.Port)}, nil
}

// maxCNAMEs bounds a chain of CNAMEs, loops included.
const maxCNAMEs = 8

// errNoSuchName is a name the DNS says does not exist.
var errNoSuchName = errors.New("no such name")

func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	c := &dns.Client{Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, m, r.Addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, m, r.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("ask %s for the %s of %s: %w", r.Addr, dns.TypeToString[qtype], name, err)
	}
	switch in.Rcode {
	case dns.RcodeSuccess:
		return in, nil
	case dns.RcodeNameError:
		return nil, fmt.Errorf("%s: %w", name, errNoSuchName)
	}
	return nil, fmt.Errorf("%s answered %s for the %s of %s", r.Addr, dns.RcodeToString[in.Rcode], dns.TypeToString[qtype], name)
}

// Addrs is what name resolves to: its IPv4 and IPv6 addresses, after
// following CNAMEs, and the names followed to get there. A literal
// address is itself.
func (r *Resolver) Addrs(ctx context.Context, name string) ([]netip.Addr, []string, error) {
	if a, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return []netip.Addr{a.Unmap()}, nil, nil
	}
	var addrs []netip.Addr
	var chain []string
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		target := dns.Fqdn(name)
		for hop := 0; ; hop++ {
			if hop > maxCNAMEs {
				return nil, nil, fmt.Errorf("%s: more than %d CNAMEs", name, maxCNAMEs)
			}
			in, err := r.query(ctx, target, qtype)
			if err != nil {
				return nil, nil, err
			}
			next := ""
			for _, rr := range in.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					addrs = appendAddr(addrs, rr.A)
				case *dns.AAAA:
					addrs = appendAddr(addrs, rr.AAAA)
				case *dns.CNAME:
					if strings.EqualFold(rr.Hdr.Name, target) {
						next = rr.Target
					}
				}
			}
			// A recursive server gives the whole chain at once; a
			// server that gives only the CNAME is asked about its target.
			if next == "" || answered(in, qtype) {
				for _, rr := range in.Answer {
					if c, ok := rr.(*dns.CNAME); ok {
						chain = appendName(chain, c.Target)
					}
				}
				break
			}
			chain = appendName(chain, next)
			target = next
		}
	}
	return addrs, chain, nil
}

func answered(in *dns.Msg, qtype uint16) bool {
	return slices.ContainsFunc(in.Answer, func(rr dns.RR) bool { return rr.Header().Rrtype == qtype })
}

func appendAddr(list []netip.Addr, ip net.IP) []netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return list
	}
	a = a.Unmap()
	if slices.Contains(list, a) {
		return list
	}
	return append(list, a)
}

func appendName(list []string, name string) []string {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if slices.Contains(list, name) {
		return list
	}
	return append(list, name)
}

// MX is the mail hosts of name, most preferred first; none when the name
// has no MX records.
func (r *Resolver) MX(ctx context.Context, name string) ([]string, error) {
	in, err := r.query(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var mx []*dns.MX
	for _, rr := range in.Answer {
		if m, ok := rr.(*dns.MX); ok && m.Mx != "." {
			mx = append(mx, m)
		}
	}
	slices.SortStableFunc(mx, func(a, b *dns.MX) int { return int(a.Preference) - int(b.Preference) })
	var hosts []string
	for _, m := range mx {
		hosts = appendName(hosts, m.Mx)
	}
	return hosts, nil
}
