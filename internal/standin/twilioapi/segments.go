package twilioapi

import (
	"strings"
	"unicode/utf16"
)

// The GSM 03.38 alphabet (3GPP TS 23.038): the basic set, one septet per
// character, and the extension table, reached through an escape septet.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

// segments counts the SMS parts body goes out in, as Twilio does for
// num_segments: GSM-7 when every character is in the GSM alphabet (160
// septets alone, 153 per part of a longer message, an extension character
// taking two that are never split), UCS-2 otherwise (70 code units alone,
// 67 per part, a surrogate pair never split).
func segments(body string) int {
	if body == "" {
		return 0
	}
	var units []int // the size of each character, in septets or UTF-16 units
	gsm := true
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			units = append(units, 1)
		case strings.ContainsRune(gsmExtension, r):
			units = append(units, 2)
		default:
			gsm = false
		}
	}
	single, part := 160, 153
	if !gsm {
		single, part = 70, 67
		units = units[:0]
		for _, r := range body {
			units = append(units, utf16.RuneLen(r))
		}
	}
	total := 0
	for _, u := range units {
		total += u
	}
	if total <= single {
		return 1
	}
	n, used := 1, 0
	for _, u := range units {
		if used+u > part {
			n, used = n+1, 0
		}
		used += u
	}
	return n
}
