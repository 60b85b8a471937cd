package httpguard

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// SecureHeaders sets the headers every page a person opens needs: csp as
// the Content-Security-Policy (which should hold frame-ancestors 'none': a
// page that can be framed can be overlaid, and an acknowledgement button
// clicked by someone who meant to click something else), no MIME sniffing,
// no framing for browsers that predate frame-ancestors, and no Referer,
// since an acknowledgement link's path is its signature.
func SecureHeaders(h http.Header, csp string) {
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// Hash is the CSP source that allows one inline <style> or <script> whose
// text is exactly text: an inline block with its hash in the policy runs,
// any other (one an injection slipped in) does not, without the blanket
// 'unsafe-inline'.
func Hash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}
