package twiliosms

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGSM7(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{"web-3 is down since 12:00 UTC", true},
		{"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", true},
		{"{}[]~|^\\€\f", true},
		{"Zürich, Malmö, Ålesund, España", true},
		{"web-3 is down — since 12:00", false},
		{"it’s down", false},
		{"Kraków", false},
		{"🔥", false},
		{"tab\there", false},
		{"`backtick`", false},
	}
	for _, tt := range tests {
		if got := GSM7(tt.s); got != tt.want {
			t.Errorf("GSM7(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func TestSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	u := func(n int) string { return strings.Repeat("ą", n) }
	tests := []struct {
		name string
		s    string
		want int
	}{
		{"empty", "", 0},
		{"one character", "a", 1},
		{"GSM full", a(160), 1},
		{"GSM one over", a(161), 2},
		{"GSM two full", a(306), 2},
		{"GSM three", a(307), 3},
		{"extension counts two", strings.Repeat("€", 80), 1},
		{"extension one over", strings.Repeat("€", 80) + "a", 2},
		{"escape pair never split", a(152) + "€" + a(152), 3},
		{"escape pair fits at the end", a(151) + "€" + a(153), 2},
		{"UCS-2 full", u(70), 1},
		{"UCS-2 one over", u(71), 2},
		{"UCS-2 two full", u(134), 2},
		{"UCS-2 three", u(135), 3},
		{"emoji counts two", strings.Repeat("🔥", 35), 1},
		{"emoji one over", strings.Repeat("🔥", 35) + "a", 2},
		{"surrogate pair never split", u(66) + "🔥" + u(66), 3},
		{"one curly quote makes it all UCS-2", a(70) + "’", 2},
		{"extension counts one in UCS-2", strings.Repeat("€", 69) + "ą", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Segments(tt.s); got != tt.want {
				t.Errorf("Segments = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestToGSM7(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain stays", "plain stays"},
		{"it’s ‘down’", "it's 'down'"},
		{"“eu-west” and „de“ and «fr»", `"eu-west" and "de" and "fr"`},
		{"12:00–12:30 — down −5 ‐ x", "12:00-12:30 - down -5 - x"},
		{"still checking…", "still checking..."},
		{"no\u00a0break\u2009thin\u202fnarrow\ttab", "no break thin narrow tab"},
		{"zero\u200bwidth\ufeff soft\u00adhyphen", "zerowidth softhyphen"},
		{"• web-3 · db-1", "- web-3 - db-1"},
		{"2×4", "2x4"},
		{"Kraków 🔥 stays", "Kraków 🔥 stays"},
		{"Zürich € {}", "Zürich € {}"},
	}
	for _, tt := range tests {
		if got := ToGSM7(tt.in); got != tt.want {
			t.Errorf("ToGSM7(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		limit int
		want  string
	}{
		{"fits", "web-3 is down", 160, "web-3 is down"},
		{"exactly the limit", strings.Repeat("a", 160), 160, strings.Repeat("a", 160)},
		{"back to the word's start", "web-3 is down since 12:00 UTC and still not answering", 20, "web-3 is down..."},
		{"cut falls on a space", "alpha beta gamma", 13, "alpha beta..."},
		{"dangling comma goes", "down, since noon today", 12, "down..."},
		{"dangling full stop goes", "web-3 is down. db-1 too", 17, "web-3 is down..."},
		{"long word is cut inside", "https://status.example.com/incidents/12345678901234567890", 20, "https://status.ex..."},
		{"word start too far back", "a bcdefghijklmnopqrstuvwxyz", 12, "a bcdefgh..."},
		{"extension characters count two", "{{{{{{{{{{", 10, "{{{..."},
		{"UCS-2 counts code units", "Сервер web-3 не отвечает с 12:00", 20, "Сервер web-3 не..."},
		{"surrogate pair kept whole", "🔥🔥🔥🔥🔥", 7, "🔥🔥..."},
		{"combining mark kept with its letter", "e\u0301e\u0301e\u0301e\u0301e\u0301", 8, "e\u0301e\u0301..."},
		{"no room for dots", "abcdef", 3, "abc"},
		{"no room at all", "abcdef", 0, ""},
		{"stray byte counts one", "ab\xffcdefgh", 6, "ab\xff..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Shorten(tt.s, tt.limit)
			if got != tt.want {
				t.Errorf("Shorten(%q, %d) = %q, want %q", tt.s, tt.limit, got, tt.want)
			}
			if n := length(got); n > tt.limit {
				t.Errorf("result has %d characters, over %d", n, tt.limit)
			}
		})
	}
}

func TestFit(t *testing.T) {
	long := "web-3.fra.example.net stopped answering HTTPS at 12:00 UTC; 3 of 3 locations agree. " +
		"We are on it and will report again by 12:30 UTC. Status: https://status.example.net/i/42"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"short text unchanged", "web-3 is down", "web-3 is down"},
		{"typography made GSM, then it fits", "web-3 is down — since 12:00 “eu-west”…",
			`web-3 is down - since 12:00 "eu-west"...`},
		{"long GSM text cut to 160", long,
			"web-3.fra.example.net stopped answering HTTPS at 12:00 UTC; 3 of 3 locations agree. We are on it and will report again by 12:30 UTC. Status..."},
		{"smart quotes no longer cost 90 characters", strings.Repeat("it’s ", 30),
			strings.Repeat("it's ", 30)},
		{"UCS-2 that cannot be helped gets one UCS-2 segment", "🔥 " + long,
			"🔥 web-3.fra.example.net stopped answering HTTPS at 12:00 UTC; 3 of..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fit(tt.in)
			if got != tt.want {
				t.Errorf("Fit:\n got %q\nwant %q", got, tt.want)
			}
			if n := Segments(got); n != 1 {
				t.Errorf("Fit's result takes %d segments", n)
			}
		})
	}
}

func FuzzFit(f *testing.F) {
	for _, s := range []string{
		"", "web-3 is down — since 12:00", strings.Repeat("€", 100), strings.Repeat("🔥", 50),
		strings.Repeat("a ", 120), "e\u0301\u0301\u0301", "\xff\xfe", strings.Repeat("{ą", 60),
	} {
		f.Add(s, 160)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		limit %= 400
		if got := Fit(s); Segments(got) > 1 {
			t.Errorf("Fit(%q) = %q takes %d segments", s, got, Segments(got))
		}
		got := Shorten(s, limit)
		if n := length(got); n > max(limit, 0) {
			t.Errorf("Shorten(%q, %d) = %q has %d characters", s, limit, got, n)
		}
		if length(s) <= limit && got != s {
			t.Errorf("Shorten(%q, %d) changed a text that fits: %q", s, limit, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Errorf("Shorten(%q, %d) = %q split a character", s, limit, got)
		}
	})
}
