package xposter_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/xposter"
)

func TestLength(t *testing.T) {
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
		{"1️⃣", 2},
		{"see https://status.example.com/i/42", 27},
		{"see https://status.example.com/i/42.", 28},
		{"(https://en.wikipedia.org/wiki/Foo_(bar))", 25},
		{"see x.com", 27},
		{"mail ops@example.com", 20},
		{"http://localhost:8080/", 22},
		{strings.Repeat("a.", 130) + "com", 263},             // a host name longer than DNS allows
		{strings.Repeat("a", 64) + ".com", 68},               // a label longer than DNS allows
		{"https://a.com/" + strings.Repeat("p", 4082), 23},   // a URL of 4096 bytes
		{"https://a.com/" + strings.Repeat("p", 4083), 4097}, // longer than twitter-text takes
	}
	for _, tt := range tests {
		if got := xposter.Length(tt.text); got != tt.want {
			t.Errorf("Length(%q) = %d, want %d", tt.text, got, tt.want)
		}
		if got := xapi.Length(tt.text); got != tt.want {
			t.Errorf("the stand-in's Length(%q) = %d, want %d", tt.text, got, tt.want)
		}
	}

	// Where Length cannot tell whether X sees a link, it counts the more
	// of the two; the stand-in counts as X does.
	unsure := []struct {
		text    string
		want, x int
	}{
		{"node.js and e.g. 3.5", 36, 20},
		{"see web-3.fra now", 31, 17},
		{"https://status.internal/x", 25, 23},
		{"https://s.internal", 23, 23},
	}
	for _, tt := range unsure {
		if got := xposter.Length(tt.text); got != tt.want {
			t.Errorf("Length(%q) = %d, want %d", tt.text, got, tt.want)
		}
		if got := xapi.Length(tt.text); got != tt.x {
			t.Errorf("the stand-in's Length(%q) = %d, want %d", tt.text, got, tt.x)
		}
	}
}

func TestFit(t *testing.T) {
	link := "https://status.example.com/incidents/2026-11-21/web-3-outage-in-frankfurt-datacentre"
	long := strings.Repeat("word ", 60) // 300
	tests := []struct {
		name, text, want string
	}{
		{"short", "web-3 is down", "web-3 is down"},
		{"exactly 280", strings.Repeat("a", 280), strings.Repeat("a", 280)},
		{"280 with a long link", strings.Repeat("a", 256) + " " + link, strings.Repeat("a", 256) + " " + link},
		{"words", long, strings.Repeat("word ", 54) + "word…"},
		{"one long word is cut inside", strings.Repeat("a", 300), strings.Repeat("a", 278) + "…"},
		{"a dangling comma goes", strings.Repeat("abcd, ", 50), strings.Repeat("abcd, ", 45) + "abcd…"},
		{"the link at the end stays", long + link, strings.Repeat("word ", 50) + "word… " + link},
		{"and with a full stop after it", long + link + ".", strings.Repeat("word ", 49) + "word… " + link + "."},
		{"a link in the middle is never cut", strings.Repeat("w ", 135) + link + " and more words after it",
			strings.Repeat("w ", 134) + "w…"},
		{"CJK counts 2", strings.Repeat("障", 150), strings.Repeat("障", 139) + "…"},
		{"emoji are never split", strings.Repeat("👩🏽‍💻", 150), strings.Repeat("👩🏽‍💻", 139) + "…"},
		{"accents stay on their letter", strings.Repeat("e\u0301", 150), strings.Repeat("e\u0301", 139) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := xposter.Fit(tt.text)
			if got != tt.want {
				t.Errorf("Fit:\n got %q (%d)\nwant %q (%d)", got, xposter.Length(got), tt.want, xposter.Length(tt.want))
			}
			if n := xapi.Length(got); n > 280 {
				t.Errorf("the stand-in counts %d", n)
			}
		})
	}
}

func FuzzFit(f *testing.F) {
	for _, s := range []string{
		"web-3 is down", strings.Repeat("word ", 60), strings.Repeat("障", 150),
		strings.Repeat("a b.com ", 40), strings.Repeat("👩🏽‍💻 ", 100) + "https://status.example.com/i/1",
		strings.Repeat("e\u0301", 300), strings.Repeat("x", 400) + " https://a.example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got := xposter.Fit(s)
		if n := xposter.Length(got); n > xposter.MaxLength {
			t.Errorf("Fit(%q) = %q counts %d", s, got, n)
		}
		if xposter.Length(s) <= xposter.MaxLength && got != s {
			t.Errorf("Fit(%q) = %q changed a text that fits", s, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Fit(%q) = %q is not UTF-8", s, got)
		}
		if n := xapi.Length(got); n > 280 {
			t.Errorf("the stand-in counts Fit(%q) = %q as %d", s, got, n)
		}
	})
}
