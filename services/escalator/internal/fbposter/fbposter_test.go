package fbposter_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/fbposter"
)

const (
	page  = "104729850000123"
	token = "EAAGm0PX4ZCpsBAKZC9page+token/with=odd&chars"
)

func config(s *graphapi.Server) fbposter.Config {
	return fbposter.Config{PageID: page, Token: token, APIURL: s.URL, Timeout: 5 * time.Second}
}

func newPoster(t *testing.T, cfg fbposter.Config) *fbposter.Poster {
	return providertest.New(t, fbposter.New, cfg)
}

func ctx(t *testing.T) context.Context { return providertest.Context(t) }

// TestRequestsOnTheWire holds, byte for byte, what Post and Comment put on
// the wire: the token in the body, never in the URL.
func TestRequestsOnTheWire(t *testing.T) {
	s := graphapi.Start(t, page, token)
	p := newPoster(t, config(s))
	enc := url.QueryEscape(token)
	tests := []struct {
		name, message, link string
		want                string
	}{
		{name: "message", message: "web-3 is down",
			want: "access_token=" + enc + "&message=web-3+is+down"},
		{name: "message and link", message: "web-3 is down", link: "https://status.example.com/i/42?a=1&b=2",
			want: "access_token=" + enc + "&link=https%3A%2F%2Fstatus.example.com%2Fi%2F42%3Fa%3D1%26b%3D2&message=web-3+is+down"},
		{name: "characters that need escaping", message: "a&b=c+d 100% ü € 🔥\nnext line",
			want: "access_token=" + enc + "&message=a%26b%3Dc%2Bd+100%25+%C3%BC+%E2%82%AC+%F0%9F%94%A5%0Anext+line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := p.Post(ctx(t), tt.message, tt.link)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			got := providertest.Find(t, s.Posts(), func(q graphapi.Post) string { return q.ID }, id)
			if got.Raw != tt.want {
				t.Errorf("body on the wire:\n got %s\nwant %s", got.Raw, tt.want)
			}
			if got.Message != tt.message || got.Link != tt.link || got.Version != "v21.0" {
				t.Errorf("stand-in read %+v", got)
			}
			if got.TokenIn != "form" || got.RequestURI != "/v21.0/"+page+"/feed" {
				t.Errorf("token in %q, request URI %q; want the form and no query", got.TokenIn, got.RequestURI)
			}
			if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type %q", ct)
			}
			if got.Header.Get("Authorization") != "" || got.Header.Get("User-Agent") != "tocsin" {
				t.Errorf("headers %v", got.Header)
			}
		})
	}

	pid, err := p.Post(ctx(t), "db-1 is down", "")
	if err != nil {
		t.Fatal(err)
	}
	cid, err := p.Comment(ctx(t), pid, "Resolved: db-1 is up again.")
	if err != nil {
		t.Fatalf("Comment: %v", err)
	}
	cs := s.Comments()
	if len(cs) != 1 || cs[0].ID != cid || cs[0].PostID != pid {
		t.Fatalf("comments %+v", cs)
	}
	if want := "access_token=" + enc + "&message=Resolved%3A+db-1+is+up+again."; cs[0].Raw != want {
		t.Errorf("comment on the wire:\n got %s\nwant %s", cs[0].Raw, want)
	}
	if cs[0].TokenIn != "form" || cs[0].RequestURI != "/v21.0/"+pid+"/comments" {
		t.Errorf("comment %+v", cs[0])
	}
}

func TestPostThenComment(t *testing.T) {
	s := graphapi.Start(t, page, token)
	p := newPoster(t, config(s))
	pid, err := p.Post(ctx(t), "web-3 is down", "https://status.example.com/i/1")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^` + page + `_[0-9]+$`).MatchString(pid) {
		t.Errorf("post ID %q", pid)
	}
	cid, err := p.Comment(ctx(t), pid, "web-3 is up again")
	if err != nil {
		t.Fatal(err)
	}
	posts, comments, err := s.WaitFor(ctx(t), 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, post, _ := strings.Cut(pid, "_")
	if posts[0].ID != pid || comments[0].ID != cid || !strings.HasPrefix(cid, post+"_") || comments[0].PostID != pid {
		t.Errorf("post %s comment %s; stand-in has %+v %+v", pid, cid, posts[0], comments[0])
	}
}

func TestVersion(t *testing.T) {
	s := graphapi.Start(t, page, token)
	cfg := config(s)
	cfg.Version = "v23.0"
	if _, err := newPoster(t, cfg).Post(ctx(t), "x", ""); err != nil {
		t.Fatal(err)
	}
	if v := s.Posts()[0].Version; v != "v23.0" {
		t.Errorf("version %q", v)
	}
}

// TestFailures calls through each way Graph fails and checks how Post and
// Comment classify it.
func TestFailures(t *testing.T) {
	tests := []struct {
		name       string
		fault      graphapi.Fault
		status     int
		code       int
		retry      bool
		retryAfter time.Duration
		text       string // a part of the error's text
	}{
		{name: "500", fault: graphapi.ServerError(500), status: 500, code: 1, retry: true,
			text: "graph answered 500, code 1 OAuthException: An unknown error has occurred. [fbtrace_id A"},
		{name: "503", fault: graphapi.ServerError(503), status: 503, code: 2, retry: true},
		{name: "502 from a proxy", fault: graphapi.Fault{Status: 502, HTML: "<html>Bad Gateway</html>"}, status: 502, retry: true,
			text: "graph answered 502"},
		{name: "app rate limit", fault: graphapi.RateLimited(4, 0), status: 400, code: 4, retry: true,
			text: "(#4) Application request limit reached"},
		{name: "user rate limit", fault: graphapi.RateLimited(17, 0), status: 400, code: 17, retry: true},
		{name: "page rate limit with a time", fault: graphapi.RateLimited(32, 90*time.Second), status: 400, code: 32,
			retry: true, retryAfter: 2 * time.Minute, text: "access regained in 2m0s"},
		{name: "feed rate limit", fault: graphapi.RateLimited(341, 0), status: 400, code: 341, retry: true},
		{name: "613", fault: graphapi.RateLimited(613, 0), status: 400, code: 613, retry: true},
		{name: "business use case rate limit", fault: graphapi.Fault{Status: 400, Code: 80001}, status: 400, code: 80001, retry: true},
		{name: "code 1 on a 400", fault: graphapi.Fault{Status: 400, Code: 1}, status: 400, code: 1, retry: true},
		{name: "transient", fault: graphapi.Fault{Status: 400, Code: 368, Transient: true}, status: 400, code: 368, retry: true},
		{name: "invalid token", fault: graphapi.InvalidToken(), status: 400, code: 190,
			text: "graph answered 400, code 190 OAuthException: Invalid OAuth access token - Cannot parse access token"},
		{name: "expired token", status: 400, code: 190,
			fault: graphapi.Fault{Status: 400, Code: 190, Subcode: 463, Message: "Error validating access token: Session has expired."},
			text:  "code 190 (subcode 463) OAuthException: Error validating access token"},
		{name: "permission", fault: graphapi.Refused(200), status: 400, code: 200, text: "pages_manage_posts"},
		{name: "blocked", fault: graphapi.Refused(368), status: 400, code: 368},
		{name: "duplicate", fault: graphapi.Refused(506), status: 400, code: 506, text: "(#506) Duplicate status message"},
		{name: "403", fault: graphapi.Fault{Status: 403, Code: 10}, status: 403, code: 10},
		{name: "token echoed", status: 400, code: 100,
			fault: graphapi.Fault{Status: 400, Code: 100, Message: "Bad token " + token + " or " + url.QueryEscape(token)},
			text:  "Bad token [token] or [token]"},
	}
	for _, tt := range tests {
		for _, call := range []string{"post", "comment"} {
			t.Run(tt.name+"/"+call, func(t *testing.T) {
				s := graphapi.Start(t, page, token)
				p := newPoster(t, config(s))
				var err error
				switch call {
				case "post":
					s.FailNext(1, tt.fault)
					_, err = p.Post(ctx(t), "web-3 is down", "")
				case "comment":
					pid, perr := p.Post(ctx(t), "web-3 is down", "")
					if perr != nil {
						t.Fatal(perr)
					}
					s.FailNext(1, tt.fault)
					_, err = p.Comment(ctx(t), pid, "web-3 is up")
				}
				providertest.Classified(t, err, providertest.Failed{Status: tt.status, Retry: tt.retry, RetryAfter: tt.retryAfter,
					Prefix: "facebook: " + call, Text: tt.text})
				e := callError(t, err)
				if e.Code != tt.code {
					t.Errorf("code %d, want %d", e.Code, tt.code)
				}
				if tt.code != 0 && (e.Type == "" || !strings.HasPrefix(e.TraceID, "A")) {
					t.Errorf("type %q, trace ID %q", e.Type, e.TraceID)
				}
				noToken(t, err)
			})
		}
	}
}

// TestWrongTokenAndPage checks what the stand-in refuses on its own.
func TestWrongTokenAndPage(t *testing.T) {
	s := graphapi.Start(t, page, token)
	cfg := config(s)
	cfg.Token = "EAAwrongwrongwrong"
	_, err := newPoster(t, cfg).Post(ctx(t), "x", "")
	if e := callError(t, err); e.Code != 190 || e.Retry || !bus.IsPermanent(err) {
		t.Errorf("wrong token: %v, want a permanent 190", err)
	}
	if strings.Contains(err.Error(), cfg.Token) {
		t.Errorf("error %q holds the wrong token", err)
	}

	cfg = config(s)
	cfg.PageID = "999"
	_, err = newPoster(t, cfg).Post(ctx(t), "x", "")
	if e := callError(t, err); e.Code != 100 || e.Subcode != 33 || e.Retry || e.Type != "GraphMethodException" {
		t.Errorf("wrong page: %v, want a permanent 100/33", err)
	}
	noToken(t, err)

	_, err = newPoster(t, config(s)).Comment(ctx(t), page+"_1", "x")
	if e := callError(t, err); e.Code != 100 || e.Retry {
		t.Errorf("comment on an unknown post: %v, want a permanent 100", err)
	}
	noToken(t, err)
}

// TestRedirectNotFollowed answers with a redirect to a URL that would
// take the token elsewhere: the client does not follow it, and the error
// does not quote it.
func TestRedirectNotFollowed(t *testing.T) {
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		http.Redirect(w, r, "http://127.0.0.1:1/steal?access_token="+url.QueryEscape(token), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	_, err := newPoster(t, fbposter.Config{PageID: page, Token: token, APIURL: srv.URL}).Post(ctx(t), "x", "")
	e := callError(t, err)
	if e.Status != http.StatusTemporaryRedirect || !e.Retry {
		t.Errorf("got %v (status %d), want the redirect as a retryable answer", err, e.Status)
	}
	noToken(t, err)
	mu.Lock()
	defer mu.Unlock()
	if hits != 1 {
		t.Errorf("%d requests, want 1", hits)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	s := graphapi.Start(t, page, token)
	p := newPoster(t, config(s))
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"empty", func() error { _, err := p.Post(ctx(t), "", ""); return err }, "facebook: post: the message is empty"},
		{"spaces", func() error { _, err := p.Post(ctx(t), " \n", ""); return err }, "the message is empty"},
		{"not UTF-8", func() error { _, err := p.Post(ctx(t), "a\xff", ""); return err }, "not valid UTF-8"},
		{"too long", func() error { _, err := p.Post(ctx(t), strings.Repeat("é", 63207), ""); return err },
			"the message has 63207 characters; Graph takes at most 63206"},
		{"relative link", func() error { _, err := p.Post(ctx(t), "x", "/i/42"); return err }, `link "/i/42" is not an absolute`},
		{"ftp link", func() error { _, err := p.Post(ctx(t), "x", "ftp://example.com/"); return err }, "not an absolute http or https URL"},
		{"comment on a name", func() error { _, err := p.Comment(ctx(t), "../../me/feed", "x"); return err },
			`facebook: comment: "../../me/feed" is not a post ID`},
		{"empty comment", func() error { _, err := p.Comment(ctx(t), page+"_1", ""); return err },
			"facebook: comment on " + page + "_1: the message is empty"},
		{"comment too long", func() error { _, err := p.Comment(ctx(t), "1", strings.Repeat("a", 8001)); return err },
			"Graph takes at most 8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			providertest.RefusedBeforeSending(t, tt.call(), tt.want)
		})
	}
	if n := len(s.Attempts()); n != 0 {
		t.Errorf("%d requests reached Graph, want none", n)
	}
}

// TestAPIURLBehindPath posts through a proxy that serves Graph below a
// path, as an operator's egress proxy might.
func TestAPIURLBehindPath(t *testing.T) {
	s := graphapi.Start(t, page, token)
	cfg := config(s)
	cfg.APIURL = providertest.BehindPath(t, s.URL, "/graph") + "/graph/"
	if _, err := newPoster(t, cfg).Post(ctx(t), "x", ""); err != nil {
		t.Fatalf("Post via proxy: %v", err)
	}
}

func TestNew(t *testing.T) {
	good := fbposter.Config{PageID: page, Token: token}
	tests := []providertest.Change[fbposter.Config]{
		{Name: "good", Change: func(*fbposter.Config) {}},
		{Name: "https API URL", Change: func(c *fbposter.Config) { c.APIURL = "https://graph-proxy.internal.example/graph" }},
		{Name: "http on loopback", Change: func(c *fbposter.Config) { c.APIURL = "http://127.0.0.1:8080" }},
		{Name: "another version", Change: func(c *fbposter.Config) { c.Version = "v19.0" }},
		{Name: "everything wrong at once", Change: func(c *fbposter.Config) {
			*c = fbposter.Config{
				PageID:  "my-page",
				Token:   token + "\n",
				APIURL:  "http://graph.facebook.com",
				Version: "21.0",
				Timeout: -time.Second,
			}
		}, Want: []string{
			`page ID "my-page"`, "token holds spaces or characters outside printable ASCII",
			"plain http would send the token in clear text", `version "21.0"`, "timeout -1s is negative",
		}},
		{Name: "empty", Change: func(c *fbposter.Config) { *c = fbposter.Config{} }, Want: []string{`page ID ""`, "token is empty"}},
		{Name: "API URL with a query", Change: func(c *fbposter.Config) { c.APIURL = "https://graph.facebook.com/?access_token=x" }, Want: []string{"want no user, query or fragment"}},
		{Name: "API URL not a URL", Change: func(c *fbposter.Config) { c.APIURL = "graph.facebook.com" }, Want: []string{"want an absolute http or https URL"}},
	}
	providertest.Configs(t, fbposter.New, good, tests, func(fbposter.Config) []string {
		return []string{token, url.QueryEscape(token), "EAAGm0PX4ZCpsBAKZC9page"}
	})
}

// callErr is a failed call as the tests read it: the provider error, and
// what Graph said.
type callErr struct {
	*bus.ProviderError
	fbposter.GraphError
}

func callError(t *testing.T, err error) callErr {
	t.Helper()
	e := callErr{ProviderError: providertest.ProviderError(t, err)}
	var ge *fbposter.GraphError
	if errors.As(err, &ge) {
		e.GraphError = *ge
	}
	return e
}

// TestContract: the poster keeps the promises every adapter keeps.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T, o providertest.Options) providertest.Rig {
		s := graphapi.Start(t, page, token)
		cfg := config(s)
		cfg.Timeout, cfg.APIURL = o.Timeout, o.APIURL(cfg.APIURL)
		p := newPoster(t, cfg)
		return providertest.Rig{
			Send:        func(ctx context.Context, key string) (string, error) { return p.Post(ctx, key, "") },
			Refuse:      func() { s.Fail(graphapi.InvalidToken()) },
			Unavailable: func() { s.Fail(graphapi.ServerError(503)) },
			Recover:     s.Recover,
			RateLimit: func(d time.Duration) time.Duration {
				s.Fail(graphapi.RateLimited(graphapi.CodePageRateLimit, d))
				return time.Duration(math.Ceil(d.Minutes())) * time.Minute // Graph counts in minutes
			},
			Accepted: func() []string {
				return providertest.Keys(s.Posts(), func(p graphapi.Post) string { return p.Message })
			},
			Connections: s.Connections,
			Secrets:     []string{token, url.QueryEscape(token), "EAAGm0PX4ZCpsBAKZC9page"},
		}
	})
}

// noToken fails if err, or anything it wraps (what Graph said among
// them), shows the token, as it is or URL-encoded.
func noToken(t *testing.T, err error) {
	t.Helper()
	providertest.NoSecretsInCauses(t, err, token, url.QueryEscape(token), "EAAGm0PX4ZCpsBAKZC9page")
}
