package xposter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxLength is X's limit on a post's text, by Length's count.
	MaxLength = 280
	// URLLength is what a URL counts for in a post, whatever its own
	// length: X wraps every link in a t.co link of this many characters.
	URLLength = 23
)

// Length counts text as X counts a post's text (twitter-text,
// configuration v3): a URL counts URLLength whatever its length; an emoji,
// with its modifiers, variation selectors and joined parts, counts 2; any
// other character counts 1 if it is in the ranges X weighs light
// (U+0000–U+10FF, most of General Punctuation) and 2 otherwise, so that a
// CJK character counts 2. X normalises the text to NFC first; Length does
// not, and counts a decomposed letter as two characters, which errs on the
// safe side.
//
// Which tokens are URLs follows twitter-text in the common cases: a host
// name whose last label is a well-known top-level domain, with or without
// http:// or https://, such as status.example.com; not an address like
// ops@example.com. Where Length cannot tell whether X sees a link, as for
// a name under a top-level domain it does not know (node.js, or
// https://status.internal/), it counts the more of the two: a text it
// passes is one X takes.
func Length(text string) int {
	n := 0
	for _, c := range clusters(text) {
		n += c.weight
	}
	return n
}

// ellipsis ends a shortened text: one character, counted 2 by X, where
// "..." would count 3.
const ellipsis = "…"

// Fit returns text unchanged if X takes it as it is, and otherwise a
// shortened text that X takes: cut at a word boundary where that keeps at
// least half of the room, never inside a URL or an emoji, and ended with
// "…". A link at the end of text, such as the status page's, is kept
// whole and the words before it are shortened instead: it is what a
// reader needs most.
func Fit(text string) string {
	if Length(text) <= MaxLength {
		return text
	}
	// A link at the end, perhaps followed by punctuation and spaces.
	cs := clusters(text)
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		if c.url {
			head := strings.TrimRightFunc(text[:c.start], unicode.IsSpace)
			tail := text[c.start:]
			if strings.TrimSpace(head) == "" || Length(tail) > MaxLength/2 {
				break
			}
			short := shorten(head, MaxLength-Length(tail)-1)
			if short == "" {
				return tail
			}
			return short + " " + tail
		}
		if !ignorable(text[c.start:c.end]) {
			break
		}
	}
	return shorten(text, MaxLength)
}

// ignorable is what may follow a link at the end of a text without it
// ceasing to be the end: spaces and closing punctuation.
func ignorable(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`.,;:!?)]}"'`, r)
	}) == ""
}

// shorten cuts text to at most limit by Length's count, ending it with
// ellipsis. It returns "" if not even a word fits.
func shorten(text string, limit int) string {
	if Length(text) <= limit {
		return text
	}
	budget := limit - Length(ellipsis)
	for budget > 0 {
		cut := prefix(text, budget)
		head := text[:cut]
		if cut < len(text) {
			r, _ := utf8.DecodeRuneInString(text[cut:])
			if !unicode.IsSpace(r) {
				// head ends inside a word: go back to the word's start,
				// if that keeps at least half of the room.
				if i := strings.LastIndexFunc(head, unicode.IsSpace); i >= 0 && Length(head[:i]) >= budget/2 {
					head = head[:i]
				}
			}
		}
		// A dangling comma, dash or space before the ellipsis reads badly.
		head = strings.TrimRightFunc(head, func(r rune) bool {
			return unicode.IsSpace(r) || strings.ContainsRune(",;:.-–—(/", r)
		})
		if head == "" {
			return ""
		}
		out := head + ellipsis
		// Cutting can change what X counts: the start of a long word may
		// look like a host name, which counts 23. Check, and cut shorter
		// if need be.
		n := Length(out)
		if n <= limit {
			return out
		}
		budget -= n - limit
	}
	return ""
}

// prefix is the byte length of the longest run of whole clusters at the
// start of text that counts at most n.
func prefix(text string, n int) int {
	used, end := 0, 0
	for _, c := range clusters(text) {
		if used+c.weight > n {
			break
		}
		used += c.weight
		end = c.end
	}
	// Never part a letter from the combining marks that follow it.
	for end > 0 && end < len(text) {
		r, _ := utf8.DecodeRuneInString(text[end:])
		if !unicode.Is(unicode.Mn, r) {
			break
		}
		_, size := utf8.DecodeLastRuneInString(text[:end])
		end -= size
	}
	return end
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
		if len(links) > 0 && links[0].start == i {
			l := links[0]
			w := URLLength
			if !l.sure {
				// X may count it as text: count the more of the two.
				w = max(w, plain(s[l.start:l.end]))
			}
			out = append(out, cluster{start: i, end: l.end, weight: w, url: true})
			i = l.end
			links = links[1:]
			continue
		}
		c := char(s, i)
		out = append(out, c)
		i = c.end
	}
	return out
}

// char is the cluster at s[i:] outside a URL: an emoji sequence or one
// character.
func char(s string, i int) cluster {
	if n := emoji(s[i:]); n > 0 {
		return cluster{start: i, end: i + n, weight: 2}
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return cluster{start: i, end: i + size, weight: weight(r)}
}

// plain counts s as text, with no URL in it.
func plain(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := char(s, i)
		n += c.weight
		i = c.end
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

// span is where a URL is in a text, and whether X surely sees one there.
type span struct {
	start, end int
	sure       bool
}

// urls returns where the URLs in s are, in order.
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
		if a, b, sure, ok := link(s[i:end]); ok {
			out = append(out, span{i + a, i + b, sure})
		}
		i = end
	}
	return out
}

// link finds the URL in token, a run of text without spaces, once the
// quotes and brackets around it and the punctuation after it are set
// aside, and returns its byte range in token. sure is false for a name
// under a top-level domain that knownTLDs lacks, such as node.js: X's
// list is longer, and X may or may not see a link there.
func link(token string) (start, end int, sure, ok bool) {
	start, end = 0, len(token)
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
		return 0, 0, false, false // an address or a mention, not a link
	}
	if i := strings.IndexAny(host, "/?#"); i >= 0 {
		host = host[:i]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		port := host[i+1:]
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return 0, 0, false, false
		}
		host = host[:i]
	}
	// Past DNS's limits on a name and twitter-text's on a URL, a token
	// is text, counted character by character.
	labels := strings.Split(host, ".")
	if len(labels) < 2 || len(host) > 253 || len(core) > 4096 {
		return 0, 0, false, false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
			strings.IndexFunc(l, func(r rune) bool { return r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) }) >= 0 {
			return 0, 0, false, false
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 || strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
		return 0, 0, false, false
	}
	return start, end, knownTLD(tld), true
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
