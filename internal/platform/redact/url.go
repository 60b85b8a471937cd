package redact

import "net/url"

// URL keeps the scheme and host of a URL whose path or query may be a
// token (a dead man's switch's ping URL): "https://hc-ping.com/…".
func URL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "…"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
