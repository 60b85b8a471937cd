// Package publictext takes out of a text whatever the public must not see
// before it is published: the configured server ids that are not public,
// the hosts and addresses Tocsin checks or fails over through, and any IP
// address at all.
//
// Staff write incident updates and maintenance reasons in a hurry ("mx1
// is back, 10.0.3.7 still down"), and the same words reach the status
// page, its JSON API and Atom feed, X, Facebook and the hosting pages'
// banner. One scrub for all of them means one definition of "internal" and
// one set of tests; it lives here because it is shared by services that
// must not import each other (the status page and the escalator) and needs
// nothing but the config. It is not internal/platform/redact: that shortens personal
// data for log lines and keeps a trace of it, while this removes names
// entirely and has to know the fleet.
//
// It guards against mistakes, not against staff: a person who means to
// publish an address can spell it out in words.
package publictext

import (
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// Replacement is what a name or an address becomes.
const Replacement = "a server"

// Scrubber scrubs text for one config. It is read-only once made, so one
// may serve every request.
type Scrubber struct {
	names    map[string]bool // lower case
	maxParts int             // the most dot-separated labels of a name
}

// New builds the scrubber of cfg. Building costs a pass over the fleet:
// make one and keep it.
func New(cfg *config.Config) *Scrubber {
	s := &Scrubber{names: map[string]bool{}}
	public := publicWords(cfg)
	add := func(name string) {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" || !isNameText(name) {
			return // an IPv6 host, or a path: the address pass takes those
		}
		s.names[name] = true
		s.maxParts = max(s.maxParts, strings.Count(name, ".")+1)
	}
	addHost := func(host string) {
		if host == "" {
			return
		}
		add(host)
		if _, err := netip.ParseAddr(host); err != nil {
			if short, _, ok := strings.Cut(host, "."); ok && short != "" && !public[strings.ToLower(short)] {
				add(short) // people say "mx1" for mx1.internal.example.net
			}
		}
	}
	for _, b := range cfg.Boxes {
		for _, srv := range b.Servers {
			if !public[strings.ToLower(srv.ID)] {
				add(srv.ID)
			}
			if u, err := url.Parse(srv.Check); err == nil {
				addHost(u.Hostname())
			}
		}
		if f := b.Failover; f != nil {
			for _, h := range f.HAProxy {
				if host, _, err := net.SplitHostPort(h.Address); err == nil {
					addHost(host)
				}
			}
			if f.Webhook != nil {
				if u, err := url.Parse(f.Webhook.URL); err == nil {
					addHost(u.Hostname())
				}
			}
			for _, name := range f.Servers {
				if !public[strings.ToLower(name)] {
					add(name)
				}
			}
		}
	}
	return s
}

// publicWords are the names the status page shows anyway: a server id the
// config also gives as a public name, a box's or a role's name, is not
// internal, and taking it out of "Webmail is back" would say less than
// the page itself does.
func publicWords(cfg *config.Config) map[string]bool {
	w := map[string]bool{}
	for _, b := range cfg.Boxes {
		w[strings.ToLower(b.Name)] = true
		w[strings.ToLower(cfg.RoleLabel(&b))] = true
		for _, s := range b.Servers {
			if s.PublicName != "" {
				w[strings.ToLower(s.PublicName)] = true
			}
		}
	}
	delete(w, "")
	return w
}

// Names are the internal names the scrubber takes out, longest first.
func (s *Scrubber) Names() []string {
	out := make([]string, 0, len(s.names))
	for n := range s.names {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b string) int {
		if d := len(b) - len(a); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return out
}

// Scrub returns text with every internal name and every IP address
// replaced by Replacement, and any port or prefix length after one with
// it.
func (s *Scrubber) Scrub(text string) string {
	return scrubIPv4(scrubIPv6(s.scrubNames(text)))
}

// nameByte is what a host name or an id is made of.
func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func isNameText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			return false
		}
	}
	return true
}

// scrubNames replaces the names. A name counts where it stands alone: as a
// whole run of name characters, or as a dot-separated part of one
// ("mx1.", "see mx1.internal", "mx1.mx2"), never inside a longer word or
// joined by a hyphen ("mx10", "mx1-old"). The longest name wins, and a
// port after it goes with it.
func (s *Scrubber) scrubNames(text string) string {
	if len(s.names) == 0 {
		return text
	}
	var out strings.Builder
	out.Grow(len(text))
	for i := 0; i < len(text); {
		if !nameByte(text[i]) {
			out.WriteByte(text[i])
			i++
			continue
		}
		end := i
		for end < len(text) && nameByte(text[end]) {
			end++
		}
		if s.scrubRun(&out, text[i:end]) {
			end += portLen(text[end:])
		}
		i = end
	}
	return out.String()
}

// scrubRun writes run, a run of name characters, with the names in it
// replaced; it reports whether the run ended with one.
func (s *Scrubber) scrubRun(out *strings.Builder, run string) (endsWithName bool) {
	lower := strings.ToLower(run)
	for i := 0; i < len(run); {
		// Where a name starting at i may end: at a dot or at the end of
		// the run, no more than maxParts labels on.
		e := -1
		for j, parts := i, 0; j <= len(run) && parts < s.maxParts; j++ {
			if j == len(run) || run[j] == '.' {
				parts++
				if j > i && s.names[lower[i:j]] {
					e = j // keep looking: the longest wins
				}
			}
		}
		if e >= 0 {
			out.WriteString(Replacement)
			i = e
			endsWithName = i == len(run)
			continue
		}
		endsWithName = false
		// No name starts here: copy up to and including the next dot.
		next := strings.IndexByte(run[i:], '.')
		if next < 0 {
			out.WriteString(run[i:])
			break
		}
		out.WriteString(run[i : i+next+1])
		i += next + 1
	}
	return endsWithName
}

// portLen is the length of the ":25" at the start of rest, 0 if none.
func portLen(rest string) int {
	if len(rest) < 2 || rest[0] != ':' {
		return 0
	}
	n := 1
	for n < len(rest) && n <= 5 && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 1 || (n < len(rest) && nameByte(rest[n]) && rest[n] != '.') {
		return 0 // not a port: "mx1:2a", or a time
	}
	return n
}

var (
	ipv4RE = regexp.MustCompile(`(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?:/[0-9]{1,2})?(?::[0-9]{1,5})?`)
	// ipv6RE finds what may be an IPv6 address, bracketed (with a port)
	// or not, with a zone and a prefix length; parsing decides.
	ipv6RE = regexp.MustCompile(`(?:\[` + ipv6Chars + `(?:%[0-9A-Za-z_.-]+)?\](?::[0-9]{1,5})?|` + ipv6Chars + `(?:%[0-9A-Za-z_.-]+)?)(?:/[0-9]{1,3})?`)
)

const ipv6Chars = `[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*`

// scrubIPv4 replaces every dotted quad whose parts are at most 255, with
// leading zeros or not, wherever it stands: a version number that looks
// like an address is a small price.
func scrubIPv4(text string) string {
	return replaceAlone(ipv4RE, text, digitByte, func(m string) string {
		addr := m
		if i := strings.IndexAny(addr, "/:"); i >= 0 {
			addr = addr[:i]
		}
		for _, part := range strings.Split(addr, ".") {
			if n, err := strconv.Atoi(part); err != nil || n > 255 {
				return m
			}
		}
		return Replacement
	})
}

// scrubIPv6 replaces every IPv6 address, in brackets or with a zone or a
// prefix length. It runs before the IPv4 pass, so that an IPv4 address
// written as IPv6 ("::ffff:10.0.0.1") goes whole.
func scrubIPv6(text string) string {
	return replaceAlone(ipv6RE, text, wordByte, func(m string) string {
		core := m
		if strings.HasPrefix(core, "[") {
			core = core[1:strings.IndexByte(core, ']')]
		} else if i := strings.IndexByte(core, '/'); i >= 0 {
			core = core[:i]
		}
		if i := strings.IndexByte(core, '%'); i >= 0 {
			core = core[:i]
		}
		if a, err := netip.ParseAddr(core); err == nil && a.Is6() {
			return Replacement
		}
		// A sentence may go on right after an address: "down at fe80::1."
		// or "2001:db8::7: back".
		trimmed := strings.TrimRight(core, ":.")
		if a, err := netip.ParseAddr(trimmed); err == nil && a.Is6() && strings.HasPrefix(m, trimmed) {
			return Replacement + m[len(trimmed):]
		}
		return m
	})
}

// replaceAlone replaces the matches of re in text by what repl makes of
// them, except where a match follows a byte that joins it to what comes
// before: "Note::" is a word and a colon, not the address "e::"; "1234.5.6.7"
// is no address.
func replaceAlone(re *regexp.Regexp, text string, joins func(byte) bool, repl func(string) string) string {
	var out strings.Builder
	last := 0
	for _, m := range re.FindAllStringIndex(text, -1) {
		if m[0] > 0 && joins(text[m[0]-1]) {
			continue
		}
		out.WriteString(text[last:m[0]])
		out.WriteString(repl(text[m[0]:m[1]]))
		last = m[1]
	}
	if last == 0 {
		return text
	}
	out.WriteString(text[last:])
	return out.String()
}

func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func digitByte(c byte) bool { return c >= '0' && c <= '9' }
