package xposter_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/internal/xtext"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/xposter"
)

var creds = xapi.Credentials{
	ConsumerKey:    "Kc0nsumerKeyT0csin0001",
	ConsumerSecret: "Sc0nsumerSecretT0csin000000000000000000000001",
	Token:          "1234567890-AccessTokenT0csin0000000000000000001",
	TokenSecret:    "TokenSecretT0csin00000000000000000000000001",
}

func config(s *xapi.Server) xposter.Config {
	return xposter.Config{
		ConsumerKey:    creds.ConsumerKey,
		ConsumerSecret: creds.ConsumerSecret,
		Token:          creds.Token,
		TokenSecret:    creds.TokenSecret,
		APIURL:         s.URL,
		Timeout:        5 * time.Second,
	}
}

func newPoster(t *testing.T, cfg xposter.Config) *xposter.Poster {
	return providertest.New(t, xposter.New, cfg)
}

func ctx(t *testing.T) context.Context { return providertest.Context(t) }

// TestRequestOnTheWire holds, byte for byte, what Post puts on the wire,
// and that X's check of the OAuth signature passes.
func TestRequestOnTheWire(t *testing.T) {
	s := xapi.Start(t, creds)
	first, err := newPoster(t, config(s)).Post(ctx(t), "first", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text, replyTo string
		want                string
	}{
		{name: "text", text: "web-3 is down", want: `{"text":"web-3 is down"}`},
		{name: "reply", text: "web-3 is up again", replyTo: first,
			want: `{"text":"web-3 is up again","reply":{"in_reply_to_tweet_id":"` + first + `"}}`},
		{name: "characters JSON escapes", text: "a \"quoted\" back\\slash\nnew line\ttab",
			want: `{"text":"a \"quoted\" back\\slash\nnew line\ttab"}`},
		{name: "characters HTML would escape", text: "db-1 & db-2 <down> 100%",
			want: `{"text":"db-1 & db-2 <down> 100%"}`},
		{name: "beyond ASCII", text: "障害 — ⚠️ 🔥 ü",
			want: `{"text":"障害 — ⚠️ 🔥 ü"}`},
		{name: "a link", text: "see https://status.example.com/i/42?x=1&y=2",
			want: `{"text":"see https://status.example.com/i/42?x=1&y=2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := newPoster(t, config(s)).Post(ctx(t), tt.text, tt.replyTo)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			got, err := s.Lookup(id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Raw != tt.want {
				t.Errorf("body on the wire:\n got %s\nwant %s", got.Raw, tt.want)
			}
			if got.Text != tt.text || got.ReplyTo != tt.replyTo {
				t.Errorf("stand-in read %q in reply to %q", got.Text, got.ReplyTo)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ua := got.Header.Get("User-Agent"); ua != "tocsin" {
				t.Errorf("User-Agent %q", ua)
			}
			auth := got.Header.Get("Authorization")
			for _, want := range []string{
				`oauth_consumer_key="` + creds.ConsumerKey + `"`,
				`oauth_token="` + creds.Token + `"`,
				`oauth_signature_method="HMAC-SHA1"`,
				`oauth_version="1.0"`,
			} {
				if !strings.Contains(auth, want) {
					t.Errorf("Authorization %q lacks %s", auth, want)
				}
			}
			for _, secret := range []string{creds.ConsumerSecret, creds.TokenSecret} {
				if strings.Contains(auth, secret) {
					t.Errorf("Authorization %q holds a secret", auth)
				}
			}
		})
	}
}

func TestPostReturnsTheID(t *testing.T) {
	s := xapi.Start(t, creds)
	id, err := newPoster(t, config(s)).Post(ctx(t), "web-3 is down", "")
	if err != nil {
		t.Fatal(err)
	}
	posts, err := s.WaitFor(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]{19}$`).MatchString(id) || posts[0].ID != id || posts[0].Text != "web-3 is down" {
		t.Errorf("posted %s, stand-in has %+v", id, posts[0])
	}
}

// TestSignatureVerified checks that the stand-in really verifies what
// Post signs: any wrong secret fails, and fails for good.
func TestSignatureVerified(t *testing.T) {
	tests := []struct {
		name   string
		change func(*xposter.Config)
		why    string
	}{
		{"wrong consumer secret", func(c *xposter.Config) { c.ConsumerSecret = "Wr0ngConsumerSecret" }, "signature does not match"},
		{"wrong token secret", func(c *xposter.Config) { c.TokenSecret = "Wr0ngTokenSecret" }, "signature does not match"},
		{"wrong consumer key", func(c *xposter.Config) { c.ConsumerKey = "Wr0ngConsumerKey" }, "unknown consumer key"},
		{"wrong token", func(c *xposter.Config) { c.Token = "1-Wr0ngToken" }, "unknown access token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := xapi.Start(t, creds)
			cfg := config(s)
			tt.change(&cfg)
			_, err := newPoster(t, cfg).Post(ctx(t), "web-3 is down", "")
			e := providertest.ProviderError(t, err)
			if e.Status != 401 || e.Retry || !bus.IsPermanent(err) || problem(err).Duplicate {
				t.Errorf("got %v (status %d, retry %v), want a permanent 401", err, e.Status, e.Retry)
			}
			if !strings.Contains(err.Error(), "x: post: x answered 401 Unauthorized: Unauthorized") {
				t.Errorf("error %q", err)
			}
			if a := s.Attempts(); len(a) != 1 || !strings.Contains(a[0].Why, tt.why) {
				t.Errorf("attempts %+v, want %q", a, tt.why)
			}
			noSecrets(t, err, cfg)
		})
	}
}

// TestFailures posts through each way X fails and checks how Post
// classifies it.
func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		fault     xapi.Fault
		status    int
		retry     bool
		duplicate bool
		text      string // a part of the error's text
	}{
		{name: "500", fault: xapi.ServerError(500), status: 500, retry: true,
			text: "x: post: x answered 500 Internal Server Error: Internal Server Error"},
		{name: "503", fault: xapi.ServerError(503), status: 503, retry: true},
		{name: "502 from a proxy", fault: xapi.Fault{Status: 502, HTML: "<html>Bad Gateway</html>"}, status: 502, retry: true,
			text: "x: post: x answered 502 Bad Gateway"},
		{name: "401", fault: xapi.Unauthorized(), status: 401, text: "401 Unauthorized"},
		{name: "403 without write permission", fault: xapi.Forbidden(""), status: 403,
			text: "not configured with the appropriate oauth1 app permissions"},
		{name: "403 too long", fault: xapi.Forbidden(xapi.DetailTooLong), status: 403, text: "Your Tweet text is too long"},
		{name: "403 duplicate", fault: xapi.Forbidden(xapi.DetailDuplicate), status: 403, duplicate: true,
			text: "x: post: x answered 403 Forbidden: You are not allowed to create a Tweet with duplicate content."},
		{name: "400", fault: xapi.Fault{Status: 400, Detail: "Bad Request"}, status: 400},
		{name: "404", fault: xapi.Fault{Status: 404}, status: 404},
		{name: "408", fault: xapi.Fault{Status: 408}, status: 408, retry: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := xapi.Start(t, creds)
			s.FailNext(1, tt.fault)
			_, err := newPoster(t, config(s)).Post(ctx(t), "web-3 is down", "")
			providertest.Classified(t, err, providertest.Failed{Status: tt.status, Retry: tt.retry, Prefix: "x: post: ", Text: tt.text})
			if dup := problem(err).Duplicate; dup != tt.duplicate || errors.Is(err, xposter.ErrDuplicate) != tt.duplicate {
				t.Errorf("duplicate %v, errors.Is(ErrDuplicate) %v; want %v", dup, errors.Is(err, xposter.ErrDuplicate), tt.duplicate)
			}
			noSecrets(t, err, config(s))
		})
	}
}

func TestRateLimited(t *testing.T) {
	s := xapi.Start(t, creds)
	reset := time.Now().Add(90 * time.Second)
	s.FailNext(1, xapi.RateLimited(reset))
	_, err := newPoster(t, config(s)).Post(ctx(t), "web-3 is down", "")
	e := providertest.ProviderError(t, err)
	if e.Status != 429 || !e.Retry || bus.IsPermanent(err) {
		t.Errorf("got %v, want a retryable 429", err)
	}
	// x-rate-limit-reset is in whole seconds.
	if e.RetryAfter < 88*time.Second || e.RetryAfter > 90*time.Second {
		t.Errorf("RetryAfter %v, want about 90s", e.RetryAfter)
	}
	if !strings.Contains(err.Error(), "x answered 429 Too Many Requests: Too Many Requests; the rate-limit window starts again in 1m") {
		t.Errorf("error %q", err)
	}
}

// TestDuplicate posts the same text twice: the second is X's duplicate,
// which a caller retrying its own post counts as done.
func TestDuplicate(t *testing.T) {
	s := xapi.Start(t, creds)
	p := newPoster(t, config(s))
	if _, err := p.Post(ctx(t), "web-3 is down", ""); err != nil {
		t.Fatal(err)
	}
	_, err := p.Post(ctx(t), "web-3 is down", "")
	if !errors.Is(err, xposter.ErrDuplicate) || !bus.IsPermanent(err) || bus.Retryable(err) {
		t.Errorf("got %v, want a permanent duplicate", err)
	}
	if d := problem(err).Detail; d != xapi.DetailDuplicate {
		t.Errorf("Detail %q", d)
	}
	// Other refusals are not duplicates.
	_, err = p.Post(ctx(t), "web-3 is up", "1234567890123456789")
	if errors.Is(err, xposter.ErrDuplicate) || !bus.IsPermanent(err) || !strings.Contains(err.Error(), "x: reply to 1234567890123456789: x answered 403 Forbidden: You attempted to reply") {
		t.Errorf("reply to an unknown post: %v", err)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	s := xapi.Start(t, creds)
	p := newPoster(t, config(s))
	tests := []struct{ name, text, replyTo, want string }{
		{"empty", "", "", "x: post: the text is empty"},
		{"spaces", " \n\t", "", "the text is empty"},
		{"281 characters", strings.Repeat("a", 281), "", "the text counts 281 characters by X's count; X takes at most 280"},
		{"141 CJK characters", strings.Repeat("障", 141), "", "counts 282"},
		{"not UTF-8", "web-3 \xff", "", "not valid UTF-8"},
		{"reply to a name", "x", "@tocsin", `x: reply: "@tocsin" is not a post ID`},
		{"reply to 20 digits", "x", strings.Repeat("1", 20), "is not a post ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Post(ctx(t), tt.text, tt.replyTo)
			providertest.RefusedBeforeSending(t, err, tt.want)
		})
	}
	if n := len(s.Attempts()); n != 0 {
		t.Errorf("%d requests reached X, want none", n)
	}
}

// TestReverseProxyBreaksSignature shows why Config.APIURL is no place for
// a reverse proxy: the signature covers the URL, and X sees another.
func TestReverseProxyBreaksSignature(t *testing.T) {
	s := xapi.Start(t, creds)
	cfg := config(s)
	cfg.APIURL = providertest.BehindPath(t, s.URL, "/x") + "/x"
	_, err := newPoster(t, cfg).Post(ctx(t), "web-3 is down", "")
	if e := providertest.ProviderError(t, err); e.Status != 401 || e.Retry {
		t.Errorf("got %v, want a permanent 401", err)
	}
}

// TestFitAcceptedByX posts what Fit makes of texts of every kind and
// checks that X takes each, by the stand-in's own count of its length.
func TestFitAcceptedByX(t *testing.T) {
	s := xapi.Start(t, creds)
	p := newPoster(t, config(s))
	words := []string{"web-3", "is", "down", "since", "12:00", "—", "障害", "🔥", "👩🏽‍💻", "café",
		"https://status.example.com/incidents/2026-11-21-web-3-outage-in-fra", "status.example.com", "ops@example.com", "(db-1,", "db-2)"}
	for i := range 60 {
		var b strings.Builder
		for j := range 40 + i*3 {
			b.WriteString(words[(i*7+j*j)%len(words)])
			b.WriteByte(" \n"[j%9/8])
		}
		text := fmt.Sprintf("%d %s https://status.example.com/i/%d", i, b.String(), i)
		if got, want := xtext.Bound(text), xtext.Length(text); got != want {
			t.Errorf("Bound(%q) = %d, X counts %d", text, got, want)
		}
		fit := xposter.Fit(text)
		if _, err := p.Post(ctx(t), fit, ""); err != nil {
			t.Errorf("Fit(%q) = %q (%d by X's count): %v", text, fit, xtext.Length(fit), err)
		}
		if !strings.HasSuffix(fit, fmt.Sprintf(" https://status.example.com/i/%d", i)) {
			t.Errorf("Fit(%q) = %q lost the link at the end", text, fit)
		}
	}
}

func TestNew(t *testing.T) {
	good := xposter.Config{ConsumerKey: "k", ConsumerSecret: "s", Token: "1-t", TokenSecret: "ts"}
	tests := []providertest.Change[xposter.Config]{
		{Name: "good", Change: func(*xposter.Config) {}},
		{Name: "https API URL", Change: func(c *xposter.Config) { c.APIURL = "https://x-proxy.internal.example" }},
		{Name: "http on loopback", Change: func(c *xposter.Config) { c.APIURL = "http://127.0.0.1:8080" }},
		{Name: "http on localhost", Change: func(c *xposter.Config) { c.APIURL = "http://localhost:8080/" }},
		{Name: "http on IPv6 loopback", Change: func(c *xposter.Config) { c.APIURL = "http://[::1]:8080" }},
		{Name: "everything wrong at once", Change: func(c *xposter.Config) {
			*c = xposter.Config{
				ConsumerKey:    "",
				ConsumerSecret: "sec ret",
				Token:          "1-tok\n",
				TokenSecret:    "",
				APIURL:         "http://api.x.com",
				Timeout:        -time.Second,
			}
		}, Want: []string{
			"consumer key is empty", "consumer secret holds spaces", "access token holds spaces",
			"access token secret is empty", "plain http would let anyone", "timeout -1s is negative",
		}},
		{Name: "API URL with a query", Change: func(c *xposter.Config) { c.APIURL = "https://api.x.com/?a=1" }, Want: []string{"want no user, query or fragment"}},
		{Name: "API URL with a user", Change: func(c *xposter.Config) { c.APIURL = "https://u:p@api.x.com/" }, Want: []string{"want no user, query or fragment"}},
		{Name: "API URL not a URL", Change: func(c *xposter.Config) { c.APIURL = "api.x.com" }, Want: []string{"want an absolute http or https URL"}},
	}
	providertest.Configs(t, xposter.New, good, tests, func(cfg xposter.Config) []string { return []string{cfg.ConsumerSecret, cfg.TokenSecret, cfg.Token} })
}

// problem is what X said, as Post's error holds it; empty when it said
// nothing.
func problem(err error) xposter.Problem {
	var pb *xposter.Problem
	if errors.As(err, &pb) {
		return *pb
	}
	return xposter.Problem{}
}

// TestContract: the poster keeps the promises every adapter keeps.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T, o providertest.Options) providertest.Rig {
		s := xapi.Start(t, creds)
		cfg := config(s)
		cfg.Timeout, cfg.APIURL = o.Timeout, o.APIURL(cfg.APIURL)
		p := newPoster(t, cfg)
		return providertest.Rig{
			Send:        func(ctx context.Context, key string) (string, error) { return p.Post(ctx, key, "") },
			Refuse:      func() { s.Fail(xapi.Forbidden("")) },
			Unavailable: func() { s.Fail(xapi.ServerError(503)) },
			Recover:     s.Recover,
			RateLimit:   func(d time.Duration) time.Duration { s.Fail(xapi.RateLimited(time.Now().Add(d))); return d },
			Accepted:    func() []string { return providertest.Keys(s.Posts(), func(p xapi.Post) string { return p.Text }) },
			Connections: s.Connections,
			Secrets:     []string{creds.ConsumerKey, creds.ConsumerSecret, creds.Token, creds.TokenSecret},
		}
	})
}

// noSecrets fails if err, or anything it wraps, shows any of cfg's
// credentials.
func noSecrets(t *testing.T, err error, cfg xposter.Config) {
	t.Helper()
	for ; err != nil; err = errors.Unwrap(err) {
		providertest.NoSecrets(t, err, cfg.ConsumerKey, cfg.ConsumerSecret, cfg.Token, cfg.TokenSecret)
	}
}
