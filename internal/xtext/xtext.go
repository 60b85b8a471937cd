// Package xtext counts a post's text as X does (twitter-text,
// configuration v3), for the poster that must keep within X's limit and
// the stand-in that enforces it: one count, so that the two cannot drift
// apart.
//
// A URL counts URLLength whatever its length; an emoji, with its
// modifiers, variation selectors and joined parts, counts 2; any other
// character counts 1 if it is in the ranges X weighs light (U+0000–U+10FF,
// most of General Punctuation) and 2 otherwise, so that a CJK character
// counts 2. X normalises the text to NFC first; this package does not, and
// counts a decomposed letter as two characters, which errs on the safe
// side.
//
// Which tokens are URLs follows twitter-text in the common cases: a token
// starting http:// or https:// with a dotted host name, or a bare host
// name whose last label is a well-known top-level domain, such as
// status.example.com; not an address like ops@example.com. X's list of
// top-level domains is longer than this package's: Length models X with
// the shorter list, and Bound counts the more of the two readings wherever
// the list decides.
package xtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxLength is X's limit on a post's text.
	MaxLength = 280
	// URLLength is what a URL counts for in a post, whatever its own
	// length: X wraps every link in a t.co link of this many characters.
	URLLength = 23
)

// Length counts s as X counts a post's text, where a link is a token with
// http:// or https:// and a host name, or a bare host name under a
// top-level domain this package knows.
func Length(s string) int { return total(Clusters(s)) }

// Bound counts s as Length does, except where X may or may not see a link
// — a host name under a top-level domain this package does not know, such
// as node.js or https://status.internal/ — where it counts the more of
// URLLength and the token's own count. A text whose Bound is within
// MaxLength is one X takes.
func Bound(s string) int { return total(BoundClusters(s)) }

// Cluster is a piece of text X counts as a whole: a URL, an emoji
// sequence, or one character.
type Cluster struct {
	Start, End int // byte offsets in the text
	Weight     int // what it counts for
	URL        bool
}

// Clusters splits s into the pieces X counts, as Length counts them.
func Clusters(s string) []Cluster { return split(s, false) }

// BoundClusters splits s into the pieces X counts, as Bound counts them:
// a token X may or may not see as a link is a URL cluster that counts the
// more of the two.
func BoundClusters(s string) []Cluster { return split(s, true) }

func total(cs []Cluster) int {
	n := 0
	for _, c := range cs {
		n += c.Weight
	}
	return n
}

func split(s string, bound bool) []Cluster {
	var out []Cluster
	links := urls(s)
	for i := 0; i < len(s); {
		if len(links) > 0 && links[0].start == i {
			l := links[0]
			links = links[1:]
			w, isURL := URLLength, l.known || l.scheme
			if bound && !l.known {
				// X may see a link or text: count the more of the two.
				w, isURL = max(w, plain(s[l.start:l.end])), true
			}
			if isURL {
				out = append(out, Cluster{Start: i, End: l.end, Weight: w, URL: true})
				i = l.end
				continue
			}
			// A bare name under a top-level domain this package does
			// not know is text by Length's count.
		}
		c := char(s, i)
		out = append(out, c)
		i = c.End
	}
	return out
}

// char is the cluster at s[i:] outside a URL: an emoji sequence or one
// character.
func char(s string, i int) Cluster {
	if n := emoji(s[i:]); n > 0 {
		return Cluster{Start: i, End: i + n, Weight: 2}
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return Cluster{Start: i, End: i + size, Weight: weight(r)}
}

// plain counts s as text, with no URL in it.
func plain(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := char(s, i)
		n += c.Weight
		i = c.End
	}
	return n
}

// weight is what one character counts for outside an emoji or URL.
func weight(r rune) int {
	switch {
	case r <= 0x10FF, 0x2000 <= r && r <= 0x200D, 0x2010 <= r && r <= 0x201F, 0x2032 <= r && r <= 0x2037:
		return 1
	}
	return 2
}

// emoji returns the length in bytes of the emoji sequence s starts with,
// or 0: a pictograph with its skin tone, variation selector, keycap mark,
// tag characters and, after a zero-width joiner, further pictographs; a
// pair of regional indicators (a flag); a digit, # or * made a keycap; a
// symbol in one of the older blocks made an emoji by U+FE0F.
func emoji(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case regional(r):
		if r2, n2 := utf8.DecodeRuneInString(s[n:]); regional(r2) {
			return n + n2
		}
		return n
	case r == '#' || r == '*' || '0' <= r && r <= '9':
		if strings.HasPrefix(s[n:], "\uFE0F\u20E3") {
			return n + len("\uFE0F\u20E3")
		}
		if strings.HasPrefix(s[n:], "\u20E3") {
			return n + len("\u20E3")
		}
		return 0
	case pictograph(r):
	case symbol(r) && strings.HasPrefix(s[n:], "\uFE0F"):
	default:
		return 0
	}
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		switch {
		case r == 0xFE0F || r == 0xFE0E || r == 0x20E3 || 0x1F3FB <= r && r <= 0x1F3FF || 0xE0020 <= r && r <= 0xE007F:
			n += size
		case r == 0x200D:
			next, nsize := utf8.DecodeRuneInString(s[n+size:])
			if !pictograph(next) && !symbol(next) {
				return n
			}
			n += size + nsize
		default:
			return n
		}
	}
	return n
}

func regional(r rune) bool { return 0x1F1E6 <= r && r <= 0x1F1FF }

// pictograph is a character that is an emoji on its own.
func pictograph(r rune) bool { return 0x1F000 <= r && r <= 0x1FAFF }

// symbol is a character of the older symbol blocks that U+FE0F turns into
// an emoji, such as ⚠ or ❤.
func symbol(r rune) bool {
	return r == 0xA9 || r == 0xAE || r == 0x203C || r == 0x2049 || r == 0x2122 || r == 0x2139 ||
		0x2190 <= r && r <= 0x21FF || 0x2300 <= r && r <= 0x23FF || r == 0x24C2 ||
		0x25A0 <= r && r <= 0x27BF || 0x2934 <= r && r <= 0x2935 || 0x2B00 <= r && r <= 0x2BFF ||
		r == 0x3030 || r == 0x303D || r == 0x3297 || r == 0x3299
}

// span is where a token shaped like a link is in a text: whether it
// starts with a scheme, and whether its top-level domain is one this
// package knows.
type span struct {
	start, end    int
	scheme, known bool
}

// urls returns where the tokens shaped like links in s are, in order.
func urls(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			i += size
			continue
		}
		end := i
		for end < len(s) {
			r, size := utf8.DecodeRuneInString(s[end:])
			if unicode.IsSpace(r) {
				break
			}
			end += size
		}
		if l, ok := link(s[i:end]); ok {
			l.start += i
			l.end += i
			out = append(out, l)
		}
		i = end
	}
	return out
}

// link finds the link in token, a run of text without spaces, once the
// quotes and brackets around it and the punctuation after it are set
// aside, and returns its byte range in token.
func link(token string) (span, bool) {
	start, end := 0, len(token)
	for start < end && strings.IndexByte(`"'([{<`, token[start]) >= 0 {
		start++
	}
	for end > start && strings.IndexByte(`"'.,;:!?)]}>`, token[end-1]) >= 0 {
		// A closing parenthesis belongs to the URL when it closes one
		// the URL opened, as in Wikipedia's.
		if token[end-1] == ')' && strings.Count(token[start:end], "(") >= strings.Count(token[start:end], ")") {
			break
		}
		end--
	}
	core := token[start:end]
	lower := strings.ToLower(core)
	host, scheme := lower, false
	for _, p := range []string{"https://", "http://"} {
		if strings.HasPrefix(lower, p) {
			host, scheme = lower[len(p):], true
			break
		}
	}
	if !scheme && strings.ContainsAny(lower, "@") {
		return span{}, false // an address or a mention, not a link
	}
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		port := host[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return span{}, false
		}
		host = host[:i]
	}
	// Past DNS's limits on a name and twitter-text's on a URL, a token
	// is text, counted character by character.
	labels := strings.Split(host, ".")
	if len(labels) < 2 || len(host) > 253 || len(core) > 4096 {
		return span{}, false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
			strings.IndexFunc(l, func(r rune) bool { return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return span{}, false
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 || strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
		return span{}, false
	}
	return span{start: start, end: end, scheme: scheme, known: knownTLD(tld)}, true
}

// knownTLDs holds the top-level domains a host name is surely a link
// with: the generic ones and the country codes seen most. twitter-text
// holds every one.
const knownTLDs = ` com net org edu gov mil int info biz name pro mobi io co ai app dev me tv
 cc ly gl gg fm to so sh ws xyz online site tech cloud page blog news shop store host network
 systems services email link live world us uk ca au nz ie de fr es it nl be ch at se no dk fi
 is pl cz sk hu ro bg gr pt eu ru ua by lt lv ee jp cn kr tw hk sg my th vn id ph in pk ir il
 tr ae sa eg za ng ke br ar cl mx pe ve uy `

func knownTLD(tld string) bool {
	return tld != "" && strings.Contains(strings.ReplaceAll(knownTLDs, "\n", " "), " "+tld+" ")
}
