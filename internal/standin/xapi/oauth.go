package xapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxSkew is how far an oauth_timestamp may be from the stand-in's clock,
// either way. X does not publish its bound; five minutes is the one OAuth
// servers commonly use, and what clients with a sane clock never reach.
const maxSkew = 5 * time.Minute

// verify checks r's OAuth 1.0a signature as X does (RFC 5849 with
// HMAC-SHA1) and returns why it fails, or "" if it holds. raw is r's body,
// already read.
func (s *Server) verify(r *http.Request, raw []byte, now time.Time) string {
	oauth, why := parseAuthorization(r.Header.Get("Authorization"))
	if why != "" {
		return why
	}
	for _, p := range []string{"oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_timestamp", "oauth_nonce", "oauth_signature"} {
		if _, ok := oauth[p]; !ok {
			return "no " + p
		}
	}
	if m := oauth["oauth_signature_method"]; m != "HMAC-SHA1" {
		return fmt.Sprintf("signature method %q, want HMAC-SHA1", m)
	}
	if v, ok := oauth["oauth_version"]; ok && v != "1.0" {
		return fmt.Sprintf("oauth_version %q, want 1.0", v)
	}
	// Both comparisons run whatever the first says.
	k := subtle.ConstantTimeCompare([]byte(oauth["oauth_consumer_key"]), []byte(s.Credentials.ConsumerKey))
	t := subtle.ConstantTimeCompare([]byte(oauth["oauth_token"]), []byte(s.Credentials.Token))
	switch {
	case k != 1:
		return "unknown consumer key"
	case t != 1:
		return "unknown access token"
	}
	ts, err := strconv.ParseInt(oauth["oauth_timestamp"], 10, 64)
	if err != nil {
		return fmt.Sprintf("oauth_timestamp %q is not a number", oauth["oauth_timestamp"])
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Sprintf("oauth_timestamp %d is %v away from now", ts, d.Round(time.Second))
	}

	params := signedParams(r, raw, oauth)
	base := SignatureBase(r.Method, baseURL(r), params)
	want := Sign(base, s.Credentials.ConsumerSecret, s.Credentials.TokenSecret)
	got, err := base64.StdEncoding.DecodeString(oauth["oauth_signature"])
	if err != nil {
		return "oauth_signature is not base64"
	}
	wantRaw, _ := base64.StdEncoding.DecodeString(want)
	if !hmac.Equal(got, wantRaw) {
		return "signature does not match; the stand-in signed " + base
	}

	// Only a request with a good signature spends its nonce, so that a
	// forged request cannot burn the nonce of a genuine one.
	nonce := oauth["oauth_nonce"]
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, expires := range s.nonces {
		if now.After(expires) {
			delete(s.nonces, n)
		}
	}
	if _, seen := s.nonces[nonce]; seen {
		return "nonce reused"
	}
	// The timestamp bounds how long a replay could pass the skew check,
	// and so how long the nonce must be remembered.
	s.nonces[nonce] = time.Unix(ts, 0).Add(2 * maxSkew)
	return ""
}

// parseAuthorization reads the parameters of an "OAuth" Authorization
// header, percent-decoded, without realm, which is not signed.
func parseAuthorization(h string) (map[string]string, string) {
	if h == "" {
		return nil, "no Authorization header"
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "OAuth") {
		return nil, "Authorization is not OAuth"
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return nil, fmt.Sprintf("Authorization parameter %q is not name=\"value\"", part)
		}
		key, err1 := url.PathUnescape(strings.TrimSpace(k))
		val, err2 := url.PathUnescape(v[1 : len(v)-1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Sprintf("Authorization parameter %q is badly percent-encoded", part)
		}
		if _, dup := params[key]; dup {
			return nil, "Authorization repeats " + key
		}
		if key != "realm" {
			params[key] = val
		}
	}
	return params, ""
}

// signedParams gathers what the signature covers: the query's parameters,
// a form body's parameters, and the oauth_* parameters of the header but
// its signature. A JSON body is not among them.
func signedParams(r *http.Request, raw []byte, oauth map[string]string) [][2]string {
	var params [][2]string
	add := func(v url.Values) {
		for k, vs := range v {
			for _, x := range vs {
				params = append(params, [2]string{k, x})
			}
		}
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
		add(q)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "application/x-www-form-urlencoded" {
		if f, err := url.ParseQuery(string(raw)); err == nil {
			add(f)
		}
	}
	for k, v := range oauth {
		if k != "oauth_signature" {
			params = append(params, [2]string{k, v})
		}
	}
	return params
}

// baseURL is the request's URL as the client addressed it, without query:
// scheme and host in lower case, the port only if it is not the scheme's
// own. Behind Transport, which carries requests for api.x.com to the
// stand-in, the Host header still names api.x.com and X-Forwarded-Proto
// the scheme, as a TLS-terminating proxy in front of X would pass them on.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := strings.ToLower(r.Header.Get("X-Forwarded-Proto")); p == "http" || p == "https" {
		scheme = p
	}
	host := strings.ToLower(r.Host)
	if h, port, err := netSplit(host); err == nil && (scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		host = h
	}
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

func netSplit(host string) (string, string, error) {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || strings.HasSuffix(host, "]") {
		return host, "", errors.New("no port")
	}
	return host[:i], host[i+1:], nil
}

// SignatureBase is OAuth 1.0a's signature base string (RFC 5849, 3.4.1):
// the method in upper case, the base URL and the parameters, sorted by
// name and then by value after percent-encoding, each part
// percent-encoded and joined by "&". It is exported so that a test can
// sign a request by hand, with a timestamp or nonce of its choosing.
func SignatureBase(method, baseURL string, params [][2]string) string {
	enc := make([][2]string, len(params))
	for i, p := range params {
		enc[i] = [2]string{percent(p[0]), percent(p[1])}
	}
	// By name, then value: not as "name=value" strings, in which "a-b=1"
	// would sort before "a=1".
	slices.SortFunc(enc, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	pairs := make([]string, len(enc))
	for i, p := range enc {
		pairs[i] = p[0] + "=" + p[1]
	}
	return strings.ToUpper(method) + "&" + percent(baseURL) + "&" + percent(strings.Join(pairs, "&"))
}

// Sign is the HMAC-SHA1 signature of base, in base64, with the key X
// derives from the consumer secret and the access token secret.
func Sign(base, consumerSecret, tokenSecret string) string {
	mac := hmac.New(sha1.New, []byte(percent(consumerSecret)+"&"+percent(tokenSecret)))
	mac.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Authorization returns the Authorization header that signs a request of
// method to baseURL with params (query and form parameters; nil for a
// JSON body) as c, at timestamp ts with nonce, as an OAuth 1.0a client
// would build it. It lets a test make requests the stand-in must refuse:
// an old timestamp, a nonce used before.
func Authorization(c Credentials, method, baseURL string, params [][2]string, ts time.Time, nonce string) string {
	oauth := [][2]string{
		{"oauth_consumer_key", c.ConsumerKey},
		{"oauth_nonce", nonce},
		{"oauth_signature_method", "HMAC-SHA1"},
		{"oauth_timestamp", strconv.FormatInt(ts.Unix(), 10)},
		{"oauth_token", c.Token},
		{"oauth_version", "1.0"},
	}
	sig := Sign(SignatureBase(method, baseURL, append(slices.Clone(params), oauth...)), c.ConsumerSecret, c.TokenSecret)
	oauth = append(oauth, [2]string{"oauth_signature", sig})
	parts := make([]string, len(oauth))
	for i, p := range oauth {
		parts[i] = percent(p[0]) + `="` + percent(p[1]) + `"`
	}
	return "OAuth " + strings.Join(parts, ", ")
}

// percent is RFC 3986 percent-encoding as OAuth 1.0a wants it: everything
// but letters, digits and "-._~" is encoded, in upper-case hex.
func percent(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
