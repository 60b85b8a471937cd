package xtext_test

import (
	"strings"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/xtext"
)

func TestLength(t *testing.T) {
	// Where X's count is sure, Length and Bound agree.
	tests := []struct {
		text string
		want int
	}{
		{"", 0},
		{"hello", 5},
		{"web-3 — down… “really”", 23}, // … counts 2, — and quotes 1
		{"café", 4},
		{"cafe\u0301", 5}, // decomposed: X would count 4
		{"障害", 4},
		{"🔥", 2},
		{"👍🏽", 2},
		{"👨‍👩‍👧", 2},
		{"🇬🇧", 2},
		{"⚠️ down", 7},
		{"⚠ down", 7},
		{"1️⃣", 2},
		{"❤️‍🔥", 2},
		{"see https://status.example.com/i/42", 27},
		{"see https://status.example.com/i/42.", 28},
		{"(https://en.wikipedia.org/wiki/Foo_(bar))", 25},
		{"see x.com", 27},
		{"see status.tocsin.net/i/1, now", 32},
		{"mail ops@example.com", 20},
		{"http://localhost:8080/", 22},
		{"https://10.0.0.1/x", 18},
		{"two https://a.example.com https://b.example.com", 4 + 23 + 1 + 23},
		{strings.Repeat("a.", 130) + "com", 263},             // a host name longer than DNS allows
		{strings.Repeat("a", 64) + ".com", 68},               // a label longer than DNS allows
		{"https://a.com/" + strings.Repeat("p", 4082), 23},   // a URL of 4096 bytes
		{"https://a.com/" + strings.Repeat("p", 4083), 4097}, // longer than twitter-text takes
	}
	for _, tt := range tests {
		if got := xtext.Length(tt.text); got != tt.want {
			t.Errorf("Length(%q) = %d, want %d", tt.text, got, tt.want)
		}
		if got := xtext.Bound(tt.text); got != tt.want {
			t.Errorf("Bound(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}

	// Where X may or may not see a link, Bound counts the more of the
	// two, and Length counts as X does with this package's list.
	unsure := []struct {
		text          string
		bound, length int
	}{
		{"node.js and e.g. 3.5", 36, 20},
		{"see web-3.fra now", 31, 17},
		{"https://status.internal/x", 25, 23},
		{"https://s.internal", 23, 23},
	}
	for _, tt := range unsure {
		if got := xtext.Bound(tt.text); got != tt.bound {
			t.Errorf("Bound(%q) = %d, want %d", tt.text, got, tt.bound)
		}
		if got := xtext.Length(tt.text); got != tt.length {
			t.Errorf("Length(%q) = %d, want %d", tt.text, got, tt.length)
		}
	}
}

// TestClusters checks that the pieces cover the text end to end, in
// order, and that their weights add up to the count.
func TestClusters(t *testing.T) {
	text := "⚠️ web-3 (see https://status.example.com/i/1) node.js 障害 👩🏽‍💻"
	for name, split := range map[string]func(string) []xtext.Cluster{"Clusters": xtext.Clusters, "BoundClusters": xtext.BoundClusters} {
		var b strings.Builder
		n, urls := 0, 0
		for _, c := range split(text) {
			b.WriteString(text[c.Start:c.End])
			n += c.Weight
			if c.URL {
				urls++
			}
		}
		if b.String() != text {
			t.Errorf("%s: pieces make %q", name, b.String())
		}
		if name == "Clusters" && (n != xtext.Length(text) || urls != 1) {
			t.Errorf("%s: weights add to %d with %d URLs, Length counts %d", name, n, urls, xtext.Length(text))
		}
		if name == "BoundClusters" && (n != xtext.Bound(text) || urls != 2) {
			t.Errorf("%s: weights add to %d with %d URLs, Bound counts %d", name, n, urls, xtext.Bound(text))
		}
	}
}

func FuzzBound(f *testing.F) {
	for _, s := range []string{"web-3 is down", "node.js https://s.internal/x", "👩🏽‍💻 https://status.example.com/i/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, l := xtext.Bound(s), xtext.Length(s); b < l {
			t.Errorf("Bound(%q) = %d, under Length %d", s, b, l)
		}
	})
}
