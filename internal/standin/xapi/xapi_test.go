package xapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dghubble/oauth1"
	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

var (
	creds = xapi.Credentials{
		ConsumerKey:    "xvz1evFS4wEEPTGEFPHBog",
		ConsumerSecret: "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
		Token:          "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
		TokenSecret:    "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
	}
	idRE = regexp.MustCompile(`^[1-9][0-9]{18}$`)
)

const unauthorized = `{"detail":"Unauthorized","type":"about:blank","title":"Unauthorized","status":401}`

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// signer returns an HTTP client that signs its requests with c, as
// dghubble/oauth1 does for code under test, and sends them through base
// (nil: the default transport).
func signer(c xapi.Credentials, base http.RoundTripper) *http.Client {
	if base == nil {
		base = http.DefaultTransport
	}
	bctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
	hc := oauth1.NewConfig(c.ConsumerKey, c.ConsumerSecret).Client(bctx, oauth1.NewToken(c.Token, c.TokenSecret))
	hc.Timeout = 10 * time.Second
	return hc
}

type result struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, hc *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

// post sends body to POST /2/tweets of the stand-in, signed with c.
func post(t *testing.T, s *xapi.Server, c xapi.Credentials, body string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(t, signer(c, nil), req)
}

func text(s string) string {
	b, _ := json.Marshal(map[string]string{"text": s})
	return string(b)
}

func TestPost(t *testing.T) {
	s := xapi.Start(t, creds)
	before := time.Now()
	body := `{"text":"web-3 is down since 12:00 — see https://status.example.com/i/42 & <wait>"}`
	got := post(t, s, creds, body)
	if got.status != 201 {
		t.Fatalf("status %d, body %s", got.status, got.body)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var ans struct {
		Data struct {
			EditHistory []string `json:"edit_history_tweet_ids"`
			ID          string   `json:"id"`
			Text        string   `json:"text"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(got.body), &ans); err != nil {
		t.Fatal(err)
	}
	id := ans.Data.ID
	if !idRE.MatchString(id) {
		t.Errorf("id %q, want 19 digits", id)
	}
	if diff := cmp.Diff(ans.Data.EditHistory, []string{id}); diff != "" {
		t.Errorf("edit history (-got +want):\n%s", diff)
	}
	// X shows every link as a t.co link; the rest as it came.
	if !regexp.MustCompile(`^web-3 is down since 12:00 — see https://t\.co/[A-Za-z0-9]{10} & <wait>$`).MatchString(ans.Data.Text) {
		t.Errorf("text %q", ans.Data.Text)
	}
	wantJSON := `{"data":{"edit_history_tweet_ids":["` + id + `"],"id":"` + id + `","text":"` + ans.Data.Text + `"}}`
	if got.body != wantJSON {
		t.Errorf("answer:\n got %s\nwant %s", got.body, wantJSON)
	}

	posts := s.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	p := posts[0]
	if p.ID != id || p.Text != "web-3 is down since 12:00 — see https://status.example.com/i/42 & <wait>" || p.ReplyTo != "" || p.Raw != body {
		t.Errorf("post %+v", p)
	}
	if p.Received.Before(before) || !strings.HasPrefix(p.Header.Get("Authorization"), "OAuth ") {
		t.Errorf("received %v, Authorization %q", p.Received, p.Header.Get("Authorization"))
	}
	if a := s.Attempts(); len(a) != 1 || a[0].Status != 201 || a[0].Raw != body || a[0].Why != "" {
		t.Errorf("attempts %+v", a)
	}
}

func TestReplyThread(t *testing.T) {
	s := xapi.Start(t, creds)
	first := post(t, s, creds, text("web-3 is down"))
	var ans struct{ Data struct{ ID string } }
	_ = json.Unmarshal([]byte(first.body), &ans)
	second := post(t, s, creds, `{"text":"web-3 is up again","reply":{"in_reply_to_tweet_id":"`+ans.Data.ID+`"}}`)
	if second.status != 201 {
		t.Fatalf("reply: %d %s", second.status, second.body)
	}
	posts := s.Posts()
	if len(posts) != 2 || posts[1].ReplyTo != ans.Data.ID || posts[1].ID <= posts[0].ID {
		t.Errorf("posts %+v", posts)
	}
	if p, err := s.Lookup(posts[1].ReplyTo); err != nil || p.Text != "web-3 is down" {
		t.Errorf("Lookup = %+v, %v", p, err)
	}
	if _, err := s.Lookup("1"); !errors.Is(err, xapi.ErrNoSuchPost) {
		t.Errorf("Lookup(1) = %v", err)
	}
}

// TestSignatureGolden checks the signature against the worked example in
// X's documentation ("Creating a signature") and the one dghubble/oauth1's
// own tests hold.
func TestSignatureGolden(t *testing.T) {
	params := [][2]string{
		{"status", "Hello Ladies + Gentlemen, a signed OAuth request!"},
		{"include_entities", "true"},
		{"oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"},
		{"oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"},
		{"oauth_signature_method", "HMAC-SHA1"},
		{"oauth_timestamp", "1318622958"},
		{"oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"},
		{"oauth_version", "1.0"},
	}
	base := xapi.SignatureBase("post", "https://api.twitter.com/1.1/statuses/update.json", params)
	wantBase := "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
	if base != wantBase {
		t.Errorf("base:\n got %s\nwant %s", base, wantBase)
	}
	if got, want := xapi.Sign(base, creds.ConsumerSecret, creds.TokenSecret), "hCtSmYh+iHYCEqBWrE7C7hYmtUk="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
	base = xapi.SignatureBase("POST", "https://api.twitter.com/1/statuses/update.json", params)
	if got, want := xapi.Sign(base, creds.ConsumerSecret, creds.TokenSecret), "tnnArxj06cWHq44gCs1OSKk/jLY="; got != want {
		t.Errorf("signature %s, want %s", got, want)
	}
}

// TestSignatureBaseSortsPairs checks that parameters sort by name, then by
// value, and not as "name=value" strings.
func TestSignatureBaseSortsPairs(t *testing.T) {
	got := xapi.SignatureBase("GET", "http://h/", [][2]string{{"a-b", "1"}, {"a", "2"}, {"a", "10"}})
	if want := "GET&http%3A%2F%2Fh%2F&a%3D10%26a%3D2%26a-b%3D1"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestAuthentication holds that every part of the signature and of the
// OAuth parameters is checked.
func TestAuthentication(t *testing.T) {
	wrong := func(change func(*xapi.Credentials)) xapi.Credentials {
		c := creds
		change(&c)
		return c
	}
	tests := []struct {
		name string
		// sign makes the request; nil: dghubble/oauth1 signs it with c.
		c    xapi.Credentials
		sign func(s *xapi.Server, req *http.Request)
		why  string // a part of Attempt.Why; empty: accepted
	}{
		{name: "good", c: creds},
		{name: "wrong consumer secret", c: wrong(func(c *xapi.Credentials) { c.ConsumerSecret += "x" }), why: "signature does not match"},
		{name: "wrong token secret", c: wrong(func(c *xapi.Credentials) { c.TokenSecret = "nope" }), why: "signature does not match"},
		{name: "wrong consumer key", c: wrong(func(c *xapi.Credentials) { c.ConsumerKey = "other" }), why: "unknown consumer key"},
		{name: "wrong token", c: wrong(func(c *xapi.Credentials) { c.Token = "1-other" }), why: "unknown access token"},
		{name: "no Authorization", sign: func(*xapi.Server, *http.Request) {}, why: "no Authorization header"},
		{name: "basic auth", sign: func(_ *xapi.Server, r *http.Request) { r.SetBasicAuth(creds.ConsumerKey, creds.ConsumerSecret) },
			why: "not OAuth"},
		{name: "hand-signed now", sign: handSigned(0, "n1", nil)},
		{name: "timestamp 10 minutes old", sign: handSigned(-10*time.Minute, "n2", nil), why: "away from now"},
		{name: "timestamp 10 minutes ahead", sign: handSigned(10*time.Minute, "n3", nil), why: "away from now"},
		{name: "timestamp 4 minutes old", sign: handSigned(-4*time.Minute, "n4", nil)},
		{name: "signed for another URL", sign: func(s *xapi.Server, r *http.Request) {
			r.Header.Set("Authorization", xapi.Authorization(creds, "POST", "https://api.x.com/2/tweets", nil, time.Now(), "n5"))
		}, why: "signature does not match"},
		{name: "signed for another method", sign: func(s *xapi.Server, r *http.Request) {
			r.Header.Set("Authorization", xapi.Authorization(creds, "PUT", s.URL+"/2/tweets", nil, time.Now(), "n6"))
		}, why: "signature does not match"},
		{name: "signed with a query parameter not sent", sign: handSigned(0, "n7", [][2]string{{"dry_run", "true"}}),
			why: "signature does not match"},
		{name: "HMAC-SHA256", sign: func(s *xapi.Server, r *http.Request) {
			h := xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "n8")
			r.Header.Set("Authorization", strings.Replace(h, "HMAC-SHA1", "HMAC-SHA256", 1))
		}, why: "want HMAC-SHA1"},
		{name: "no nonce", sign: func(s *xapi.Server, r *http.Request) {
			h := xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "n9")
			r.Header.Set("Authorization", regexp.MustCompile(`oauth_nonce="[^"]*", `).ReplaceAllString(h, ""))
		}, why: "no oauth_nonce"},
		{name: "signature tampered", sign: func(s *xapi.Server, r *http.Request) {
			h := xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "n10")
			r.Header.Set("Authorization", regexp.MustCompile(`oauth_signature="[^"]*"`).ReplaceAllString(h, `oauth_signature="`+strings.Repeat("A", 27)+`%3D"`)) // 20 zero bytes, the length of an HMAC-SHA1
		}, why: "signature does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := xapi.Start(t, creds)
			req, _ := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(text(tt.name)))
			req.Header.Set("Content-Type", "application/json")
			var got result
			if tt.sign != nil {
				tt.sign(s, req)
				got = do(t, http.DefaultClient, req)
			} else {
				got = do(t, signer(tt.c, nil), req)
			}
			a := s.Attempts()
			if len(a) != 1 {
				t.Fatalf("attempts %+v", a)
			}
			if tt.why == "" {
				if got.status != 201 {
					t.Errorf("status %d %s, why %q; want 201", got.status, got.body, a[0].Why)
				}
				return
			}
			if got.status != 401 || got.body != unauthorized {
				t.Errorf("got %d %s, want 401 %s", got.status, got.body, unauthorized)
			}
			if !strings.Contains(a[0].Why, tt.why) {
				t.Errorf("why %q, want %q", a[0].Why, tt.why)
			}
			if len(s.Posts()) != 0 {
				t.Error("a refused request was posted")
			}
		})
	}
}

// handSigned signs a request to the stand-in at now+skew with nonce,
// covering query (which is also sent unless the name is "… not sent").
func handSigned(skew time.Duration, nonce string, signedQuery [][2]string) func(*xapi.Server, *http.Request) {
	return func(s *xapi.Server, r *http.Request) {
		r.Header.Set("Authorization", xapi.Authorization(creds, r.Method, s.URL+"/2/tweets", signedQuery, time.Now().Add(skew), nonce))
	}
}

func TestQueryAndFormAreSigned(t *testing.T) {
	s := xapi.Start(t, creds)
	// A query parameter sent and signed.
	req, _ := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets?a=b+c&z=1", strings.NewReader(text("query")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", xapi.Authorization(creds, "POST", s.URL+"/2/tweets", [][2]string{{"a", "b c"}, {"z", "1"}}, time.Now(), "q1"))
	if got := do(t, http.DefaultClient, req); got.status != 201 {
		t.Errorf("signed query: %d %s", got.status, got.body)
	}
	// dghubble/oauth1 signs the query too.
	req, _ = http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets?a=b+c", strings.NewReader(text("query 2")))
	req.Header.Set("Content-Type", "application/json")
	if got := do(t, signer(creds, nil), req); got.status != 201 {
		t.Errorf("oauth1 with a query: %d %s", got.status, got.body)
	}

	// A form body's parameters are part of the signature; the stand-in
	// then refuses the form for not being JSON, which shows that the
	// signature held.
	form := url.Values{"text": {"form"}}.Encode()
	req, _ = http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "f1"))
	if got := do(t, http.DefaultClient, req); got.status != 401 {
		t.Errorf("form not signed: %d %s, want 401", got.status, got.body)
	}
	req, _ = http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if got := do(t, signer(creds, nil), req); got.status != 400 {
		t.Errorf("form signed: %d %s, want 400 for not being JSON", got.status, got.body)
	}

	// A JSON body is not: changing it after signing changes nothing.
	req, _ = http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(text("changed after signing")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "j1"))
	if got := do(t, http.DefaultClient, req); got.status != 201 {
		t.Errorf("JSON body: %d %s", got.status, got.body)
	}
}

func TestNonceReused(t *testing.T) {
	s := xapi.Start(t, creds)
	h := xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "once")
	for i, want := range []int{201, 401} {
		req, _ := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(text(fmt.Sprint("nonce ", i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", h)
		if got := do(t, http.DefaultClient, req); got.status != want {
			t.Errorf("request %d: %d %s, want %d", i+1, got.status, got.body, want)
		}
	}
	if a := s.Attempts(); len(a) != 2 || a[1].Why != "nonce reused" {
		t.Errorf("attempts %+v", a)
	}

	// A request with a bad signature does not spend the nonce.
	bad := xapi.Authorization(xapi.Credentials{ConsumerKey: creds.ConsumerKey, ConsumerSecret: "x", Token: creds.Token, TokenSecret: "y"},
		"POST", s.URL+"/2/tweets", nil, time.Now(), "later")
	good := xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "later")
	for i, hdr := range []string{bad, good} {
		req, _ := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(text(fmt.Sprint("spend ", i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", hdr)
		if got, want := do(t, http.DefaultClient, req).status, []int{401, 201}[i]; got != want {
			t.Errorf("request %d: %d, want %d", i+1, got, want)
		}
	}
}

// TestAnswers holds the stand-in's answer to each kind of request to post,
// byte for byte where X's text is known.
func TestAnswers(t *testing.T) {
	url100 := "https://status.example.com/incidents/" + strings.Repeat("x", 63) // 100 characters, counts 23
	tests := []struct {
		name        string
		contentType string
		body        string
		status      int
		want        string // the whole answer, when set
		why         string
	}{
		{name: "280 characters", body: text(strings.Repeat("a", 280)), status: 201},
		{name: "281 characters", body: text(strings.Repeat("a", 281)), status: 403,
			want: `{"detail":"Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text.","type":"about:blank","title":"Forbidden","status":403}`,
			why:  "counts 281"},
		{name: "a long URL counts 23", body: text(strings.Repeat("a", 256) + " " + url100), status: 201},
		{name: "and one more character is too many", body: text(strings.Repeat("a", 257) + " " + url100), status: 403, why: "counts 281"},
		{name: "a short bare domain counts 23 too", body: text(strings.Repeat("a", 257) + " x.com"), status: 403, why: "counts 281"},
		{name: "140 CJK characters", body: text(strings.Repeat("障", 140)), status: 201},
		{name: "141 CJK characters", body: text(strings.Repeat("障", 141)), status: 403, why: "counts 282"},
		{name: "140 emoji with skin tones", body: text(strings.Repeat("👍🏽", 140)), status: 201},
		{name: "accents count 1", body: text(strings.Repeat("é", 280)), status: 201},
		{name: "no text", body: `{}`, status: 400,
			want: `{"errors":[{"parameters":{"text":[""]},"message":"$.text: must not be empty when there is no media, poll or quote"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`},
		{name: "empty text", body: `{"text":""}`, status: 400, why: "no text"},
		{name: "unknown field", body: `{"text":"x","status":"x"}`, status: 400,
			want: `{"errors":[{"message":"$.status: is not defined in the schema and the schema does not allow additional properties"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`},
		{name: "text not a string", body: `{"text":5}`, status: 400},
		{name: "two objects", body: `{"text":"a"}{"text":"b"}`, status: 400},
		{name: "not JSON", body: `text=hello`, status: 400},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: `{"text":"x"}`, status: 400, why: "not application/json"},
		{name: "JSON with charset", contentType: "application/json; charset=utf-8", body: text("x"), status: 201},
		{name: "reply ID not digits", body: `{"text":"x","reply":{"in_reply_to_tweet_id":"12ab"}}`, status: 400,
			want: `{"errors":[{"parameters":{"reply.in_reply_to_tweet_id":["12ab"]},"message":"The ` + "`reply.in_reply_to_tweet_id`" + ` query parameter value [12ab] does not match ^[0-9]{1,19}$"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}`},
		{name: "reply without ID", body: `{"text":"x","reply":{}}`, status: 400},
		{name: "reply to an unknown post", body: `{"text":"x","reply":{"in_reply_to_tweet_id":"1234567890123456789"}}`, status: 403,
			want: `{"detail":"You attempted to reply to a Tweet that is deleted or not visible to you.","type":"about:blank","title":"Forbidden","status":403}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := xapi.Start(t, creds)
			req, _ := http.NewRequestWithContext(ctx(t), "POST", s.URL+"/2/tweets", strings.NewReader(tt.body))
			ct := "application/json"
			if tt.contentType != "" {
				ct = tt.contentType
			}
			req.Header.Set("Content-Type", ct)
			got := do(t, signer(creds, nil), req)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d; body %s", got.status, tt.status, got.body)
			}
			if tt.want != "" && got.body != tt.want {
				t.Errorf("answer:\n got %s\nwant %s", got.body, tt.want)
			}
			if !json.Valid([]byte(got.body)) {
				t.Errorf("answer %s is not JSON", got.body)
			}
			a := s.Attempts()
			if len(a) != 1 || !strings.Contains(a[0].Why, tt.why) {
				t.Errorf("attempts %+v, want why %q", a, tt.why)
			}
			if n := len(s.Posts()); (n == 1) != (tt.status == 201) {
				t.Errorf("%d posts after %d", n, tt.status)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	s := xapi.Start(t, creds)
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"POST", "/2/tweet", 404},
		{"POST", "/1.1/statuses/update.json", 404},
		{"GET", "/2/tweets", 405},
		{"DELETE", "/2/tweets", 405},
	} {
		req, _ := http.NewRequestWithContext(ctx(t), tt.method, s.URL+tt.path, strings.NewReader(text("x")))
		req.Header.Set("Content-Type", "application/json")
		got := do(t, signer(creds, nil), req)
		if got.status != tt.status || !json.Valid([]byte(got.body)) {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, got.status, got.body, tt.status)
		}
	}
}

func TestDuplicate(t *testing.T) {
	s := xapi.Start(t, creds)
	if got := post(t, s, creds, text("web-3 is down")); got.status != 201 {
		t.Fatalf("first: %d %s", got.status, got.body)
	}
	got := post(t, s, creds, text("web-3 is down"))
	want := `{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}`
	if got.status != 403 || got.body != want {
		t.Errorf("second: %d %s, want 403 %s", got.status, got.body, want)
	}
	// The same text as a reply is a duplicate too.
	id := s.Posts()[0].ID
	if got := post(t, s, creds, `{"text":"web-3 is down","reply":{"in_reply_to_tweet_id":"`+id+`"}}`); got.status != 403 {
		t.Errorf("as a reply: %d %s", got.status, got.body)
	}
	if got := post(t, s, creds, text("web-3 is down.")); got.status != 201 {
		t.Errorf("other text: %d %s", got.status, got.body)
	}
}

// TestConcurrentDuplicates checks that of many requests with one text at
// once, exactly one gets in.
func TestConcurrentDuplicates(t *testing.T) {
	s := xapi.Start(t, creds)
	hc := signer(creds, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	count := map[int]int{}
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/2/tweets", strings.NewReader(text("once")))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			count[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if count[201] != 1 || count[403] != 19 || len(s.Posts()) != 1 {
		t.Errorf("answers %v, %d posts; want one 201 and 19 403", count, len(s.Posts()))
	}
}

func TestFaults(t *testing.T) {
	reset := time.Now().Add(90 * time.Second).Truncate(time.Second)
	providertest.Faults(t, func(t *testing.T) providertest.FaultRig[xapi.Fault] {
		s := xapi.Start(t, creds)
		return providertest.FaultRig[xapi.Fault]{
			FailNext: func(f xapi.Fault) { s.FailNext(1, f) },
			Send: func(t *testing.T) providertest.Answer {
				got := post(t, s, creds, text("x"))
				return providertest.Answer{Status: got.status, Header: got.header, Body: got.body}
			},
			OK:   201,
			Kept: func() int { return len(s.Posts()) },
		}
	}, []providertest.Faulted[xapi.Fault]{
		{Name: "500", Fault: xapi.ServerError(500), Status: 500,
			Body: `{"detail":"Internal Server Error","type":"about:blank","title":"Internal Server Error","status":500}`},
		{Name: "503", Fault: xapi.ServerError(503), Status: 503,
			Body: `{"detail":"Service Unavailable","type":"about:blank","title":"Service Unavailable","status":503}`},
		{Name: "429", Fault: xapi.RateLimited(reset), Status: 429,
			Body:   `{"detail":"Too Many Requests","type":"about:blank","title":"Too Many Requests","status":429}`,
			Header: map[string]string{"x-rate-limit-remaining": "0", "x-rate-limit-reset": strconv.FormatInt(reset.Unix(), 10), "x-rate-limit-limit": "100"}},
		{Name: "401", Fault: xapi.Unauthorized(), Status: 401, Body: unauthorized},
		{Name: "403 permissions", Fault: xapi.Forbidden(""), Status: 403,
			Body: `{"detail":"Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.","type":"https://api.twitter.com/2/problems/oauth1-permissions","title":"Forbidden","status":403}`},
		{Name: "403 duplicate on command", Fault: xapi.Forbidden(xapi.DetailDuplicate), Status: 403,
			Body: `{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}`},
		{Name: "502 from a proxy", Fault: xapi.Fault{Status: 502, HTML: "<html>Bad Gateway</html>"}, Status: 502,
			Body: "<html>Bad Gateway</html>", Header: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
	})
}

func TestRateLimitedDefaultReset(t *testing.T) {
	s := xapi.Start(t, creds)
	s.FailNext(1, xapi.RateLimited(time.Time{}))
	got := post(t, s, creds, text("x"))
	reset, err := strconv.ParseInt(got.header.Get("x-rate-limit-reset"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(time.Unix(reset, 0)); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("reset in %v, want about 15 minutes", d)
	}
}

func TestFailNextQueues(t *testing.T) {
	s := xapi.Start(t, creds)
	s.FailNext(1, xapi.ServerError(503))
	s.FailNext(2, xapi.RateLimited(time.Time{}))
	var got []int
	for i := range 4 {
		got = append(got, post(t, s, creds, text(fmt.Sprint("q", i))).status)
	}
	if diff := cmp.Diff(got, []int{503, 429, 429, 201}); diff != "" {
		t.Errorf("statuses (-got +want):\n%s", diff)
	}
	var attempts []int
	for _, a := range s.Attempts() {
		attempts = append(attempts, a.Status)
	}
	if diff := cmp.Diff(attempts, got); diff != "" {
		t.Errorf("attempts (-got +want):\n%s", diff)
	}
}

func TestFaultsOnlyAfterAuthentication(t *testing.T) {
	s := xapi.Start(t, creds)
	s.FailNext(1, xapi.ServerError(503))
	bad := creds
	bad.ConsumerSecret = "wrong"
	if got := post(t, s, bad, text("x")); got.status != 401 {
		t.Errorf("bad signature: %d, want 401 before any fault", got.status)
	}
	if got := post(t, s, creds, text("x")); got.status != 503 {
		t.Errorf("then: %d, want the queued 503", got.status)
	}
}

func TestFailIf(t *testing.T) {
	s := xapi.Start(t, creds)
	var seen []xapi.Request
	s.FailIf(func(r xapi.Request) *xapi.Fault {
		seen = append(seen, r)
		if strings.Contains(r.Text, "refuse me") {
			f := xapi.Forbidden("")
			return &f
		}
		return nil
	})
	post(t, s, creds, text("fine"))
	if got := post(t, s, creds, `{"text":"refuse me","reply":{"in_reply_to_tweet_id":"7"}}`); got.status != 403 {
		t.Errorf("refuse me: %d", got.status)
	}
	want := []xapi.Request{{N: 1, Text: "fine"}, {N: 2, Text: "refuse me", ReplyTo: "7"}}
	if diff := cmp.Diff(seen, want); diff != "" {
		t.Errorf("rule saw (-got +want):\n%s", diff)
	}
	s.FailIf(nil)
	if got := post(t, s, creds, text("refuse me")); got.status != 201 {
		t.Errorf("after FailIf(nil): %d", got.status)
	}
}

// TestTransport posts to https://api.x.com through the stand-in's
// transport: the signature, made for X's URL, holds.
func TestTransport(t *testing.T) {
	s := xapi.Start(t, creds)
	for _, u := range []string{"https://api.x.com/2/tweets", "https://api.twitter.com/2/tweets"} {
		req, _ := http.NewRequestWithContext(ctx(t), "POST", u, strings.NewReader(text(u)))
		req.Header.Set("Content-Type", "application/json")
		if got := do(t, signer(creds, s.Transport()), req); got.status != 201 {
			t.Errorf("%s: %d %s", u, got.status, got.body)
		}
	}
	// Signed for the stand-in's own URL but carried as api.x.com: refused.
	req, _ := http.NewRequestWithContext(ctx(t), "POST", "https://api.x.com/2/tweets", strings.NewReader(text("mismatch")))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", xapi.Authorization(creds, "POST", s.URL+"/2/tweets", nil, time.Now(), "t1"))
	if got := do(t, s.Client(), req); got.status != 401 {
		t.Errorf("signed for another URL: %d", got.status)
	}

}

func TestNewRejectsCredentials(t *testing.T) {
	for _, change := range []func(*xapi.Credentials){
		func(c *xapi.Credentials) { c.ConsumerKey = "" },
		func(c *xapi.Credentials) { c.ConsumerSecret = "with space" },
		func(c *xapi.Credentials) { c.Token = "tab\t" },
		func(c *xapi.Credentials) { c.TokenSecret = "ü" },
	} {
		c := creds
		change(&c)
		if s, err := xapi.New(c); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

// TestStandInContract: the stand-in's faults, stalls and transport work
// as every stand-in's do.
func TestStandInContract(t *testing.T) {
	providertest.RunStandIn(t, func(t *testing.T) providertest.StandIn {
		s := xapi.Start(t, creds)
		hc := signer(creds, s.Transport())
		return providertest.StandIn{
			Post: func(ctx context.Context, key string) (int, error) {
				return providertest.Post(ctx, hc, "https://api.x.com/2/tweets", "application/json", text(key))
			},
			OK:          http.StatusCreated,
			Unavailable: func() { s.Fail(xapi.ServerError(503)) },
			Stall:       func() { s.Fail(xapi.Stall()) },
			StallNext:   func() { s.FailNext(1, xapi.Stall()) },
			Recover:     s.Recover, Release: s.Release,
			Stalled: s.Stalled, Connections: s.Connections,
			Attempts: func() int { return len(s.Attempts()) },
			Accepted: func() []string { return providertest.Keys(s.Posts(), func(p xapi.Post) string { return p.Text }) },
			WaitFor:  func(ctx context.Context, n int) (int, error) { posts, err := s.WaitFor(ctx, n); return len(posts), err },
			Close:    s.Close, Client: s.Client(), API: "api.x.com",
		}
	})
}
