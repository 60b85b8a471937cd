// Package redact shortens personal data and secrets to what a log line needs:
// enough to tell two people apart, never enough to contact them.
package redact

import "strings"

// Email keeps the first letter and the domain: "a…@example.net".
func Email(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "…"
	}
	return addr[:1] + "…" + addr[at:]
}

// Phone keeps the country code's first digits and the last two: "+44…01".
func Phone(n string) string {
	if len(n) < 6 {
		return "…"
	}
	return n[:3] + "…" + n[len(n)-2:]
}
