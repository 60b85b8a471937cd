package xposter

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/xtext"
)

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
	if xtext.Bound(text) <= xtext.MaxLength {
		return text
	}
	// A link at the end, perhaps followed by punctuation and spaces.
	cs := xtext.BoundClusters(text)
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		if c.URL {
			head := strings.TrimRightFunc(text[:c.Start], unicode.IsSpace)
			tail := text[c.Start:]
			if strings.TrimSpace(head) == "" || xtext.Bound(tail) > xtext.MaxLength/2 {
				break
			}
			short := shorten(head, xtext.MaxLength-xtext.Bound(tail)-1)
			if short == "" {
				return tail
			}
			return short + " " + tail
		}
		if !ignorable(text[c.Start:c.End]) {
			break
		}
	}
	return shorten(text, xtext.MaxLength)
}

// ignorable is what may follow a link at the end of a text without it
// ceasing to be the end: spaces and closing punctuation.
func ignorable(s string) bool {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`.,;:!?)]}"'`, r)
	}) == ""
}

// shorten cuts text to at most limit by xtext.Bound's count, ending it with
// ellipsis. It returns "" if not even a word fits.
func shorten(text string, limit int) string {
	if xtext.Bound(text) <= limit {
		return text
	}
	budget := limit - xtext.Bound(ellipsis)
	for budget > 0 {
		cut := prefix(text, budget)
		head := text[:cut]
		if cut < len(text) {
			r, _ := utf8.DecodeRuneInString(text[cut:])
			if !unicode.IsSpace(r) {
				// head ends inside a word: go back to the word's start,
				// if that keeps at least half of the room.
				if i := strings.LastIndexFunc(head, unicode.IsSpace); i >= 0 && xtext.Bound(head[:i]) >= budget/2 {
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
		n := xtext.Bound(out)
		if n <= limit {
			return out
		}
		budget -= n - limit
	}
	return ""
}

// prefix is the byte length of the longest run of whole clusters at the
// start of text that counts at most n by xtext.Bound's count.
func prefix(text string, n int) int {
	used, end := 0, 0
	for _, c := range xtext.BoundClusters(text) {
		if used+c.Weight > n {
			break
		}
		used += c.Weight
		end = c.End
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
