package xapi

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLength is X's limit on a post's text, by Length's count.
const maxLength = 280

// urlLength is what a URL counts for in a post, whatever its own length:
// X wraps every link in a t.co link of this many characters.
const urlLength = 23

// Length counts s as X counts a post's text (twitter-text, configuration
// v3): a URL counts 23 whatever its length; an emoji, with its modifiers,
// variation selectors and joined parts, counts 2; any other character
// counts 1 if it is in the ranges X weighs light (U+0000–U+10FF, most of
// General Punctuation) and 2 otherwise, so that a CJK character counts 2.
// X normalises the text to NFC first; Length does not, and counts a
// decomposed letter as two characters.
//
// Which tokens are URLs follows twitter-text in the common cases: a token
// starting http:// or https:// with a dotted host name, or a bare host name
// whose last label is a well-known top-level domain, such as
// status.example.com; not an address like ops@example.com. This is a
// stand-in's approximation of X's full top-level domain list, and the
// code under test keeps its own count: the tests hold the two to each
// other.
func Length(s string) int {
	n := 0
	for _, c := range clusters(s) {
		n += c.weight
	}
	return n
}

// cluster is a piece of text X counts as a whole: a URL, an emoji
// sequence, or one character.
type cluster struct {
	start, end int // byte offsets in the text
	weight     int
	url        bool
}

// clusters splits s into the pieces X counts.
func clusters(s string) []cluster {
	var out []cluster
	links := urls(s)
	for i := 0; i < len(s); {
		if len(links) > 0 && links[0][0] == i {
			out = append(out, cluster{start: i, end: links[0][1], weight: urlLength, url: true})
			i = links[0][1]
			links = links[1:]
			continue
		}
		if n := emoji(s[i:]); n > 0 {
			out = append(out, cluster{start: i, end: i + n, weight: 2})
			i += n
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		out = append(out, cluster{start: i, end: i + size, weight: weight(r)})
		i += size
	}
	return out
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

// urls returns the byte ranges of the URLs in s, in order.
func urls(s string) [][2]int {
	var out [][2]int
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
		if a, b, ok := link(s[i:end]); ok {
			out = append(out, [2]int{i + a, i + b})
		}
		i = end
	}
	return out
}

// link finds the URL in token, a run of text without spaces, once the
// quotes and brackets around it and the punctuation after it are set
// aside, and returns its byte range in token.
func link(token string) (int, int, bool) {
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
		return 0, 0, false // an address or a mention, not a link
	}
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		port := host[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return 0, 0, false
		}
		host = host[:i]
	}
	// Past DNS's limits on a name and twitter-text's on a URL, a token
	// is text, counted character by character.
	labels := strings.Split(host, ".")
	if len(labels) < 2 || len(host) > 253 || len(core) > 4096 {
		return 0, 0, false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
			strings.IndexFunc(l, func(r rune) bool { return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return 0, 0, false
		}
	}
	tld := labels[len(labels)-1]
	if scheme {
		if len(tld) < 2 || strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
			return 0, 0, false
		}
	} else if !knownTLD(tld) {
		return 0, 0, false
	}
	return start, end, true
}

// knownTLDs holds the top-level domains a bare host name is a link
// with: the generic ones and the country codes seen most. twitter-text
// holds every one; a name under any other is counted as text.
const knownTLDs = ` com net org edu gov mil int info biz name pro mobi io co ai app dev me tv
 cc ly gl gg fm to so sh ws xyz online site tech cloud page blog news shop store host network
 systems services email link live world us uk ca au nz ie de fr es it nl be ch at se no dk fi
 is pl cz sk hu ro bg gr pt eu ru ua by lt lv ee jp cn kr tw hk sg my th vn id ph in pk ir il
 tr ae sa eg za ng ke br ar cl mx pe ve uy `

func knownTLD(tld string) bool {
	return tld != "" && strings.Contains(strings.ReplaceAll(knownTLDs, "\n", " "), " "+tld+" ")
}
