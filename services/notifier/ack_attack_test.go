package notifier

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/slowconn"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The acknowledgement server as an attacker on the internet sees it: it
// guesses link signatures, forges and replays webhooks, frames the page,
// and sends headers too large to read.

// rawRequest sends text on a new connection from local ("" for any
// address) to the server at base and returns the answer.
func rawRequest(t *testing.T, base, local, text string) *http.Response {
	t.Helper()
	c := slowconn.Dial(t, base, local)
	go io.WriteString(c, text)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

// ackLinkOf is the signed link that acknowledges incident as the staff
// member named.
func ackLinkOf(t *testing.T, r *running, incident, name string) string {
	t.Helper()
	for _, s := range r.cfg.Staff {
		if s.Name == name {
			return (&Notifier{cfg: r.cfg}).ackURL(incident, s)
		}
	}
	t.Fatalf("no staff member %s", name)
	return ""
}

// TestAckPageHeaders: the acknowledgement page runs no script, takes
// nothing from elsewhere, cannot be framed (a framed button can be clicked
// by someone who meant to click something else), and sends no Referer
// that would carry its signature away.
func TestAckPageHeaders(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_wait: 0s")
	link := ackLinkOf(t, r, "20260101-hdr001", "Alice")
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Acknowledge as Alice") {
		t.Fatalf("the page: %d\n%s", resp.StatusCode, page)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("the policy allows inline code: %q", csp)
	}
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(page)
	if style == nil || !strings.Contains(csp, httpguard.Hash(string(style[1]))) {
		t.Error("the page's style sheet is not the one its policy allows")
	}
	if regexp.MustCompile(`<script|\sstyle="|\son[a-z]+=`).Match(page) {
		t.Errorf("the page has inline script, style or handlers:\n%s", page)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}

// TestAckHugeHeaderRefused: a 1 MB header gets 431.
func TestAckHugeHeaderRefused(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_wait: 0s")
	if got := slowconn.HugeHeader(t, slowconn.Dial(t, r.public, ""), "/ack/a/b/c", 1<<20); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 1 MB header: %d, want 431", got)
	}
}

// ackServerShortened serves the acknowledgement server on loopback with
// its bounds shortened, so that a test sees them act in a moment.
func ackServerShortened(t *testing.T) string {
	t.Helper()
	n, kv, _ := ackNotifier(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.serveOn(ctx, ln, kv, shortLimits) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// shortLimits are the acknowledgement server's bounds, shortened.
var shortLimits = httpguard.Limits{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: 500 * time.Millisecond}

// TestAckSlowHeadersCut: a client that sends its headers a byte at a time
// is cut off at the header timeout, however steadily the bytes come.
func TestAckSlowHeadersCut(t *testing.T) {
	t.Parallel()
	c := slowconn.Dial(t, ackServerShortened(t), "")
	request := "GET /ack/a/b/c HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("x", 1000) + "\r\n\r\n"
	slowconn.TrickleCut(t, c, request)
}

// TestAckIdleConnectionClosed: a keep-alive connection left idle after a
// request is closed at the idle timeout.
func TestAckIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	c := slowconn.Dial(t, ackServerShortened(t), "")
	slowconn.IdleClosed(t, c, "/ack/a/b/c", http.StatusForbidden, shortLimits.IdleTimeout)
}

// TestAckLinkGuessingLimited: guessing link signatures from one address
// gets 429 with Retry-After before long, while a real link from another
// address still works.
func TestAckLinkGuessingLimited(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_wait: 0s")
	who := staffKey(r.cfg.Staff[0])
	var limited *http.Response
	for i := range 3 * linkBurst {
		resp := rawRequest(t, r.public, "127.0.0.1", fmt.Sprintf("GET /ack/20260101-abcdef/%s/guess%d HTTP/1.1\r\nHost: x\r\n\r\n", who, i))
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("guess %d: %d, want 403", i, resp.StatusCode)
		}
	}
	if limited == nil {
		t.Fatalf("%d guesses from one address, none limited", 3*linkBurst)
	}
	if limited.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	path := strings.TrimPrefix(ackLinkOf(t, r, "20260101-abcdef", "Alice"), r.public)
	if resp := rawRequest(t, r.public, "127.0.0.2", "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Errorf("a real link from another address: %d", resp.StatusCode)
	}
}

// TestWebhookFloodLimited: forged webhooks from one address get 429 with
// Retry-After past the limit; Twilio, posting from its own address, is
// still heard.
func TestWebhookFloodLimited(t *testing.T) {
	t.Parallel()
	r := startNotifier(t, "group_wait: 0s")
	form := url.Values{"From": {alicePh}, "Body": {"ACK"}, "MessageSid": {"SM00000000000000000000000000000001"}}.Encode()
	var limited *http.Response
	for i := range 3 * webhookBurst {
		resp := rawRequest(t, r.public, "127.0.0.2", fmt.Sprintf("POST /twilio/sms HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: forged%d\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s", i, len(form), form))
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged webhook %d: %d, want 403", i, resp.StatusCode)
		}
	}
	if limited == nil || limited.Header.Get("Retry-After") == "" {
		t.Fatalf("%d forged webhooks from one address, none limited with Retry-After", 3*webhookBurst)
	}
	a, err := r.twilio.SendInbound(context.Background(), r.public+pathTwilioSMS, twilioapi.Inbound{From: alicePh, To: "+447700900000", Body: "HELP"})
	if err != nil || a.Status != 200 {
		t.Errorf("Twilio's own webhook: %+v, %v", a, err)
	}
}

// fuzzNotifier is a notifier whose endpoints a fuzzer calls in process,
// without the per-client limits, on a real bus.
func fuzzNotifier(f *testing.F) (http.Handler, *config.Config, string) {
	f.Helper()
	return inProcess(f, nil)
}

// inProcess is a notifier's endpoints, called in process without the
// per-client limits, on a real bus; wrap, if not nil, wraps the
// deliveries bucket they read and write.
func inProcess(f testing.TB, wrap func(jetstream.KeyValue) jetstream.KeyValue) (http.Handler, *config.Config, string) {
	f.Helper()
	n, kv, public := ackNotifier(f)
	if wrap != nil {
		kv = wrap(kv)
	}
	return n.routes(kv), n.cfg, public
}

// ackNotifier is a notifier that is not running, its deliveries bucket on a
// real bus, and the public address its config gives.
func ackNotifier(f testing.TB) (*Notifier, jetstream.KeyValue, string) {
	f.Helper()
	const public = "https://tocsin.example.net"
	cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}]
staff:
  - {name: Alice, email: alice@example.net, phone: "%s"}
  - {name: Bob, email: bob@example.net, phone: "%s"}
providers:
  smtp: {host: 127.0.0.1, port: 2525, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN}
notify: {public_url: "%s", link_key_env: LINK}
`, alicePh, bobPh, public)), func(k string) (string, bool) {
		v, ok := map[string]string{"SID": testSID, "TOKEN": testToken, "LINK": "l1nk-k3y"}[k]
		return v, ok
	})
	if err != nil {
		f.Fatal(err)
	}
	b := bustest.New(f)
	n, err := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	kv, err := b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		f.Fatal(err)
	}
	return n, kv, public
}

// FuzzAckLink: whatever path and method a link is opened with, only a
// link the notifier signed shows the page or acknowledges; anything else
// is refused, never an error of the server's.
func FuzzAckLink(f *testing.F) {
	h, cfg, _ := fuzzNotifier(f)
	good := (&Notifier{cfg: cfg}).ackURL("20260101-abcdef", cfg.Staff[0])
	goodPath := good[strings.Index(good, "/ack/"):]
	for _, seed := range []struct{ method, path string }{
		{"GET", goodPath}, {"POST", goodPath}, {"PUT", goodPath},
		{"GET", "/ack/20260101-abcdef/alice/AAAAAAAAAAAAAAAAAAAAAA"},
		{"GET", "/ack/../../etc/passwd/x"},
		{"POST", "/ack/%2e%2e/x/y"},
		{"GET", "/ack/a>b/*/" + strings.Repeat("A", 5000)},
	} {
		f.Add(seed.method, seed.path)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		if !validMethod(method) {
			return
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Method, req.URL.Path, req.URL.RawPath = method, path, ""
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if path != goodPath || (method != "GET" && method != "HEAD" && method != "POST") {
				t.Errorf("%s %q was taken: %s", method, path, rec.Body)
			}
		case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			t.Errorf("%s %q: %d %s", method, path, rec.Code, rec.Body)
		}
	})
}

func validMethod(m string) bool {
	return m != "" && !strings.ContainsFunc(m, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) })
}

// FuzzTwilioWebhook: whatever a signed inbound message says, and whoever
// it claims to be from, the webhook answers with TwiML, refuses, or asks
// Twilio to try again; a forged signature is always refused.
func FuzzTwilioWebhook(f *testing.F) {
	h, _, public := fuzzNotifier(f)
	for _, seed := range []struct {
		from, body string
		signed     bool
	}{
		{alicePh, "ACK", true}, {alicePh, "ack k3f9x2", true}, {bobPh, "OK >", true},
		{alicePh, "ACK *", true}, {"+15555550100", "ACK", true}, {alicePh, "ACK", false},
		{alicePh, "ACK code.with.dots", true}, {"", "", true},
	} {
		f.Add(seed.from, seed.body, seed.signed)
	}
	f.Fuzz(func(t *testing.T, from, body string, signed bool) {
		form := url.Values{"From": {from}, "Body": {body}, "MessageSid": {"SM00000000000000000000000000000001"}}
		sig := "forged"
		if signed {
			sig = twilioapi.Signature(testToken, public+pathTwilioSMS, form)
		}
		req := httptest.NewRequest("POST", pathTwilioSMS, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case !signed && rec.Code != http.StatusForbidden:
			t.Errorf("a forged webhook: %d %s", rec.Code, rec.Body)
		case rec.Code == http.StatusOK && !strings.HasPrefix(rec.Body.String(), "<?xml"):
			t.Errorf("answer is not TwiML: %s", rec.Body)
		case rec.Code != http.StatusOK && rec.Code != http.StatusForbidden && rec.Code != http.StatusServiceUnavailable && rec.Code != http.StatusBadRequest:
			t.Errorf("%q %q: %d %s", from, body, rec.Code, rec.Body)
		}
	})
}

// signedPost is a POST of form to path, signed as Twilio signs it for the
// public address when signed, else with a forged signature.
func signedPost(public, path string, form url.Values, signed bool) *http.Request {
	sig := "forged"
	if signed {
		sig = twilioapi.Signature(testToken, public+path, form)
	}
	req := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
	req.URL.Path, req.URL.RawPath = path, ""
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sig)
	return req
}

// FuzzTwilioStatus: whatever a signed status callback says, it is recorded
// (204), refused, or Twilio is asked to try again; only a MessageSid that
// is a valid token is recorded, and a forged signature is always refused.
func FuzzTwilioStatus(f *testing.F) {
	h, _, public := fuzzNotifier(f)
	for _, seed := range []struct {
		sid, status, code string
		signed            bool
	}{
		{"SM00000000000000000000000000000001", "delivered", "", true},
		{"SM00000000000000000000000000000001", "undelivered", "30003", true},
		{"SM00000000000000000000000000000002", "failed", "30008", false},
		{"SM.*.>", "sent", "", true},
		{"", "queued", "", true},
		{"SM00000000000000000000000000000003", strings.Repeat("x", 5000), "<script>", true},
	} {
		f.Add(seed.sid, seed.status, seed.code, seed.signed)
	}
	f.Fuzz(func(t *testing.T, sid, status, code string, signed bool) {
		form := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "ErrorCode": {code}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signedPost(public, pathTwilioStatus, form, signed))
		switch {
		case !signed && rec.Code != http.StatusForbidden:
			t.Errorf("a forged status callback: %d %s", rec.Code, rec.Body)
		case rec.Code == http.StatusNoContent && !events.ValidToken(sid):
			t.Errorf("a status for MessageSid %q was recorded", sid)
		case rec.Code != http.StatusNoContent && rec.Code != http.StatusForbidden && rec.Code != http.StatusBadRequest && rec.Code != http.StatusServiceUnavailable:
			t.Errorf("%q %q %q: %d %s", sid, status, code, rec.Code, rec.Body)
		}
	})
}

// FuzzVoiceGather: a keypress is acted on only when both the URL (ours)
// and the request (Twilio's) are signed, for a call to the person the URL
// names; anything else is refused, never an error of the server's.
func FuzzVoiceGather(f *testing.F) {
	h, cfg, public := fuzzNotifier(f)
	alice := cfg.Staff[0]
	for _, seed := range []struct {
		incident, to, digits, call string
		signedURL, signedHook      bool
	}{
		{"20260101-abcdef", alicePh, "1", "CA00000000000000000000000000000001", true, true},
		{"20260101-abcdef", alicePh, "2", "CA00000000000000000000000000000002", true, true},
		{"20260101-abcdef", bobPh, "1", "CA00000000000000000000000000000003", true, true},
		{"20260101-abcdef", alicePh, "1", "CA00000000000000000000000000000004", false, true},
		{"20260101-abcdef", alicePh, "1", "CA00000000000000000000000000000005", true, false},
		{"../../ack", alicePh, "1", "CA6", true, true},
		{"20260101-abcdef", alicePh, "1", "", true, true},
		{"a*b", alicePh, "1#", "CA.>", true, true},
	} {
		f.Add(seed.incident, seed.to, seed.digits, seed.call, seed.signedURL, seed.signedHook)
	}
	f.Fuzz(func(t *testing.T, incident, to, digits, call string, signedURL, signedHook bool) {
		gather := gatherURL(cfg.Notify, incident, alice)
		path := gather[len(public):]
		if !signedURL {
			path = path[:strings.LastIndex(path, "/")+1] + "AAAAAAAAAAAAAAAAAAAAAA"
		}
		form := url.Values{"To": {to}, "Digits": {digits}, "CallSid": {call}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signedPost(public, path, form, signedHook))
		switch rec.Code {
		case http.StatusOK:
			if !signedURL || !signedHook || to != alicePh || !events.ValidToken(incident) || !events.ValidToken(call) {
				t.Errorf("taken: incident %q, to %q, call %q, signed URL %v, signed request %v: %s", incident, to, call, signedURL, signedHook, rec.Body)
			}
			if !strings.HasPrefix(rec.Body.String(), "<?xml") {
				t.Errorf("answer is not TwiML: %s", rec.Body)
			}
		case http.StatusForbidden, http.StatusBadRequest, http.StatusConflict, http.StatusServiceUnavailable,
			http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			t.Errorf("incident %q, to %q, digits %q, call %q: %d %s", incident, to, digits, call, rec.Code, rec.Body)
		}
	})
}
