package twiliosms

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// An SMS carries 140 bytes: 160 characters of the GSM 03.38 alphabet at 7
// bits each, or 70 UTF-16 code units (UCS-2) when any character is outside
// it. A longer message is split into parts, each of which loses room to the
// header that joins them again, and each of which is paid for.
const (
	gsmSingle = 160 // septets in a message of one part
	gsmPart   = 153 // septets in each part of a longer one
	ucsSingle = 70  // UTF-16 code units in a message of one part
	ucsPart   = 67  // and in each part of a longer one

	// MaxBody is the longest body Twilio accepts, in UTF-16 code units
	// (an emoji counts two).
	MaxBody = 1600
)

// The GSM 03.38 alphabet (3GPP TS 23.038): the basic set, one septet per
// character, and the extension table, whose characters take an escape
// septet as well.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

// gsmCost is the septets r takes in GSM-7, or 0 if GSM-7 cannot carry it.
func gsmCost(r rune) int {
	switch {
	case strings.ContainsRune(gsmBasic, r):
		return 1
	case strings.ContainsRune(gsmExtension, r):
		return 2
	}
	return 0
}

// GSM7 reports whether s can be sent in the GSM 03.38 alphabet, 160
// characters to a segment; one character outside it sends the whole
// message as UCS-2, 70 to a segment.
func GSM7(s string) bool {
	for _, r := range s {
		if gsmCost(r) == 0 {
			return false
		}
	}
	return true
}

// cost is what r takes in a message sent as GSM-7 (gsm) or UCS-2.
func cost(r rune, gsm bool) int {
	if gsm {
		return gsmCost(r)
	}
	return utf16.RuneLen(r)
}

// length is s's size as an SMS counts it: septets if it is GSM-7, UTF-16
// code units otherwise.
func length(s string) int {
	gsm := GSM7(s)
	n := 0
	for _, r := range s {
		n += cost(r, gsm)
	}
	return n
}

// Segments is the number of SMS parts s goes out in, and is billed as, by
// the count Twilio uses: GSM-7 text takes 160 septets alone or 153 per part
// (an extension character takes two, never split across parts), UCS-2 text
// 70 code units alone or 67 per part (a surrogate pair is never split). The
// empty string takes none.
func Segments(s string) int {
	if s == "" {
		return 0
	}
	gsm := GSM7(s)
	single, part := gsmSingle, gsmPart
	if !gsm {
		single, part = ucsSingle, ucsPart
	}
	if length(s) <= single {
		return 1
	}
	n, used := 1, 0
	for _, r := range s {
		c := cost(r, gsm)
		if used+c > part {
			n, used = n+1, 0
		}
		used += c
	}
	return n
}

// ToGSM7 replaces the typographic characters that editors and templates
// put in text, and that GSM-7 lacks, by their plain equivalents: curly
// quotes by straight ones, dashes and the minus sign by '-', the ellipsis
// by "...", unusual spaces by a space; invisible characters go. One such
// character would otherwise send the whole message as UCS-2, cutting a
// segment from 160 characters to 70. Other characters, letters in
// particular, are kept: a name is worth more than a segment.
func ToGSM7(s string) string {
	if GSM7(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if gsmCost(r) > 0 {
			b.WriteRune(r)
			continue
		}
		switch r {
		case '‘', '’', '‚', '‛', '′', '‹', '›', 'ʼ', '`', '´':
			b.WriteByte('\'')
		case '“', '”', '„', '‟', '″', '«', '»':
			b.WriteByte('"')
		case '‐', '‑', '‒', '–', '—', '―', '−', '•', '·':
			b.WriteByte('-')
		case '…':
			b.WriteString("...")
		case '\t', '\u00a0', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006',
			'\u2007', '\u2008', '\u2009', '\u200a', '\u202f', '\u205f', '\u3000':
			b.WriteByte(' ')
		case '\u00ad', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff':
			// soft hyphen, zero-width characters, byte-order mark
		case '×':
			b.WriteByte('x')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Shorten returns s unchanged if it fits in limit characters as an SMS
// counts them (septets for GSM-7 text, UTF-16 code units otherwise).
// Otherwise it cuts s at the last word boundary that leaves room for
// "..." and appends "...": plain ASCII, since "…" would turn GSM-7 text
// into UCS-2. A word so long that cutting before it would lose more than
// half of the room is cut inside. A limit under 4 leaves no room for
// "...", and s is just cut.
func Shorten(s string, limit int) string {
	if length(s) <= limit {
		return s
	}
	if limit <= 0 {
		return ""
	}
	if limit < 4 {
		return prefix(s, limit)
	}
	budget := limit - len("...")
	head := prefix(s, budget)
	if rest := s[len(head):]; rest != "" {
		r, _ := utf8.DecodeRuneInString(rest)
		if !unicode.IsSpace(r) {
			// head ends inside a word: go back to the word's start, if
			// that keeps at least half of the room.
			if i := strings.LastIndexFunc(head, unicode.IsSpace); i >= 0 && worst(head[:i]) >= budget/2 {
				head = head[:i]
			}
		}
	}
	// A dangling comma, dash or space before the dots reads badly.
	if trimmed := strings.TrimRightFunc(head, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:.-(/", r)
	}); trimmed != "" {
		head = trimmed
	}
	return head + "..."
}

// prefix is the longest prefix of s whose worst-case cost is at most n,
// never parting a letter from the combining marks that follow it.
func prefix(s string, n int) string {
	used, end := 0, 0
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:]) // size 1 for a stray byte
		c := worstCost(r)
		if used+c > n {
			break
		}
		used += c
		end += size
	}
	for end > 0 && end < len(s) {
		r, _ := utf8.DecodeRuneInString(s[end:])
		if !unicode.Is(unicode.Mn, r) {
			break
		}
		_, size := utf8.DecodeLastRuneInString(s[:end])
		end -= size
	}
	return s[:end]
}

// worstCost is what r takes in whichever encoding costs more. A prefix of
// a UCS-2 text may itself be GSM-7, and then its extension characters take
// two septets where they took one code unit: counting the worse of the two
// keeps a cut text within the limit either way.
func worstCost(r rune) int {
	return max(gsmCost(r), utf16.RuneLen(r))
}

func worst(s string) int {
	n := 0
	for _, r := range s {
		n += worstCost(r)
	}
	return n
}

// Fit makes an alarm text fit in one SMS where it can: it replaces
// typographic characters by GSM-7 ones (ToGSM7) and shortens the result
// to 160 characters. Text that still holds characters GSM-7 lacks, such as
// an emoji or a Cyrillic name, can only go as UCS-2, and is shortened to
// the 70 that one segment of it holds; a caller that would rather pay for
// more segments than lose words calls Shorten with its own limit.
func Fit(s string) string {
	s = ToGSM7(s)
	if GSM7(s) {
		return Shorten(s, gsmSingle)
	}
	return Shorten(s, ucsSingle)
}
