package xposter_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/xtext"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/xposter"
)

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
				t.Errorf("Fit:\n got %q (%d)\nwant %q (%d)", got, xtext.Bound(got), tt.want, xtext.Bound(tt.want))
			}
			if n := xtext.Length(got); n > 280 {
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
		if n := xtext.Bound(got); n > xtext.MaxLength {
			t.Errorf("Fit(%q) = %q counts %d", s, got, n)
		}
		if xtext.Bound(s) <= xtext.MaxLength && got != s {
			t.Errorf("Fit(%q) = %q changed a text that fits", s, got)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Fit(%q) = %q is not UTF-8", s, got)
		}
		if n := xtext.Length(got); n > 280 {
			t.Errorf("the stand-in counts Fit(%q) = %q as %d", s, got, n)
		}
	})
}
