package graphapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

const (
	page  = "104729850000123"
	token = "EAAGm0PX4ZCpsBAKZC9fake0page0token0ZDZD"
)

var (
	postIDRE = regexp.MustCompile(`^` + page + `_[0-9]{16}$`)
	traceRE  = regexp.MustCompile(`"fbtrace_id":"A[A-Za-z0-9_-]{22}"`)
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

type result struct {
	status int
	header http.Header
	body   string
}

// send makes a request with form as a urlencoded body, after mod (if not
// nil) has had its say.
func send(t *testing.T, hc *http.Client, method, u string, form url.Values, mod func(*http.Request)) result {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), method, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if mod != nil {
		mod(req)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func feed(s *graphapi.Server) string { return s.URL + "/v21.0/" + page + "/feed" }

func withToken(kv ...string) url.Values {
	v := url.Values{"access_token": {token}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// id reads the ID from a created object's answer.
func id(t *testing.T, r result) string {
	t.Helper()
	var ans map[string]string
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || len(ans) != 1 || ans["id"] == "" {
		t.Fatalf("answer %d %s, want {\"id\": …}", r.status, r.body)
	}
	return ans["id"]
}

// graphError is the answer's JSON with its fbtrace_id, which is random,
// made fixed.
func graphError(body string) string {
	return traceRE.ReplaceAllString(body, `"fbtrace_id":"TRACE"`)
}

func TestPost(t *testing.T) {
	s := graphapi.Start(t, page, token)
	before := time.Now()
	form := withToken("message", "web-3 is down & <being> looked at", "link", "https://status.example.com/i/42")
	got := send(t, http.DefaultClient, "POST", feed(s), form, nil)
	if got.status != 200 {
		t.Fatalf("status %d %s", got.status, got.body)
	}
	pid := id(t, got)
	if !postIDRE.MatchString(pid) || got.body != `{"id":"`+pid+`"}` {
		t.Errorf("answer %s", got.body)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if v := got.header.Get("facebook-api-version"); v != "v21.0" {
		t.Errorf("facebook-api-version %q", v)
	}
	posts := s.Posts()
	if len(posts) != 1 {
		t.Fatalf("%d posts", len(posts))
	}
	p := posts[0]
	want := graphapi.Post{
		ID: pid, Message: "web-3 is down & <being> looked at", Link: "https://status.example.com/i/42",
		Arrival: graphapi.Arrival{Version: "v21.0", TokenIn: "form", RequestURI: "/v21.0/" + page + "/feed", Raw: form.Encode()},
	}
	if diff := cmp.Diff(p, want, cmpIgnoring("Received", "Header")); diff != "" {
		t.Errorf("post (-got +want):\n%s", diff)
	}
	if p.Received.Before(before) || p.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("received %v, header %v", p.Received, p.Header)
	}
	if a := s.Attempts(); len(a) != 1 || a[0].Status != 200 || a[0].Code != 0 || a[0].Raw != form.Encode() {
		t.Errorf("attempts %+v", a)
	}
}

func TestTokenPlaces(t *testing.T) {
	s := graphapi.Start(t, page, token)
	tests := []struct {
		name, where string
		url         string
		form        url.Values
		mod         func(*http.Request)
	}{
		{name: "form", where: "form", url: feed(s), form: withToken("message", "a")},
		{name: "query", where: "query", url: feed(s) + "?access_token=" + url.QueryEscape(token), form: url.Values{"message": {"b"}}},
		{name: "bearer", where: "header", url: feed(s), form: url.Values{"message": {"c"}},
			mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }},
		{name: "OAuth", where: "header", url: feed(s), form: url.Values{"message": {"d"}},
			mod: func(r *http.Request) { r.Header.Set("Authorization", "OAuth "+token) }},
		{name: "form and header", where: "form,header", url: feed(s), form: withToken("message", "e"),
			mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := send(t, http.DefaultClient, "POST", tt.url, tt.form, tt.mod)
			pid := id(t, got)
			for _, p := range s.Posts() {
				if p.ID == pid && p.TokenIn != tt.where {
					t.Errorf("TokenIn %q, want %q", p.TokenIn, tt.where)
				}
			}
		})
	}
}

func TestMultipart(t *testing.T) {
	s := graphapi.Start(t, page, token)
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("access_token", token)
	_ = mw.WriteField("message", "from a multipart form")
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(ctx(t), "POST", feed(s), &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || len(s.Posts()) != 1 || s.Posts()[0].Message != "from a multipart form" {
		t.Errorf("status %d, posts %+v", resp.StatusCode, s.Posts())
	}
}

// TestAnswers holds the stand-in's answer to each kind of bad request,
// byte for byte but the random fbtrace_id.
func TestAnswers(t *testing.T) {
	unsupported := func(method, id string) string {
		return `{"error":{"message":"Unsupported ` + method + ` request. Object with ID '` + id + `' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api","type":"GraphMethodException","code":100,"error_subcode":33,"fbtrace_id":"TRACE"}}`
	}
	tests := []struct {
		name   string
		method string
		path   string
		form   url.Values
		mod    func(*http.Request)
		status int
		code   int
		want   string
	}{
		{name: "no token", form: url.Values{"message": {"x"}}, status: 400, code: 104,
			want: `{"error":{"message":"An access token is required to request this resource.","type":"OAuthException","code":104,"fbtrace_id":"TRACE"}}`},
		{name: "wrong token", form: url.Values{"message": {"x"}, "access_token": {"EAAwrong"}}, status: 400, code: 190,
			want: `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"TRACE"}}`},
		{name: "wrong token in the header, right one in the form", form: withToken("message", "x"), status: 400, code: 190,
			mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer EAAwrong") }},
		{name: "basic auth is no token", form: url.Values{"message": {"x"}}, status: 400, code: 190,
			mod: func(r *http.Request) { r.SetBasicAuth("u", token) }},
		{name: "another page", path: "/v21.0/999/feed", form: withToken("message", "x"), status: 400, code: 100,
			want: unsupported("post", "999")},
		{name: "no version", path: "/" + page + "/feed", form: withToken("message", "x"), status: 400, code: 2500,
			want: `{"error":{"message":"Unknown path components: /` + page + `/feed","type":"OAuthException","code":2500,"fbtrace_id":"TRACE"}}`},
		{name: "minor version", path: "/v21.1/" + page + "/feed", form: withToken("message", "x"), status: 400, code: 2500},
		{name: "another edge", path: "/v21.0/" + page + "/photos", form: withToken("message", "x"), status: 400, code: 2500},
		{name: "an older version", path: "/v2.0/" + page + "/feed", form: withToken("message", "x"), status: 200},
		{name: "a newer version", path: "/v99.0/" + page + "/feed/", form: withToken("message", "x"), status: 200},
		{name: "GET", method: "GET", form: withToken(), status: 400, code: 100, want: unsupported("get", page)},
		{name: "no message", form: withToken(), status: 400, code: 100,
			want: `{"error":{"message":"(#100) Missing message or attachment","type":"OAuthException","code":100,"fbtrace_id":"TRACE"}}`},
		{name: "blank message", form: withToken("message", " \n "), status: 400, code: 100},
		{name: "link alone", form: withToken("link", "https://status.example.com/"), status: 400, code: 100},
		{name: "message of 63206", form: withToken("message", strings.Repeat("é", 63206)), status: 200},
		{name: "message of 63207", form: withToken("message", strings.Repeat("é", 63207)), status: 400, code: 100,
			want: `{"error":{"message":"(#100) Param message must be at most 63206 characters long","type":"OAuthException","code":100,"fbtrace_id":"TRACE"}}`},
		{name: "link not a URL", form: withToken("message", "x", "link", "status.example.com/i/1"), status: 400, code: 100,
			want: `{"error":{"message":"(#100) The link parameter must be a valid URL","type":"OAuthException","code":100,"fbtrace_id":"TRACE"}}`},
		{name: "JSON body is not read", form: nil, status: 400, code: 100,
			mod: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(`{"message":"x","access_token":"` + token + `"}`))
				r.ContentLength = -1
				r.Header.Set("Content-Type", "application/json")
				r.URL.RawQuery = "access_token=" + url.QueryEscape(token)
			}},
		{name: "comment on the page", path: "/v21.0/" + page + "/comments", form: withToken("message", "x"), status: 400, code: 100,
			want: unsupported("post", page)},
		{name: "comment on an unknown post", path: "/v21.0/" + page + "_1/comments", form: withToken("message", "x"), status: 400, code: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := graphapi.Start(t, page, token)
			method, path := "POST", "/v21.0/"+page+"/feed"
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				path = tt.path
			}
			got := send(t, http.DefaultClient, method, s.URL+path, tt.form, tt.mod)
			if got.status != tt.status {
				t.Fatalf("status %d, want %d; %s", got.status, tt.status, got.body)
			}
			if tt.want != "" && graphError(got.body) != tt.want {
				t.Errorf("answer:\n got %s\nwant %s", got.body, tt.want)
			}
			a := s.Attempts()
			if len(a) != 1 || a[0].Code != tt.code {
				t.Errorf("attempts %+v, want code %d", a, tt.code)
			}
			if tt.status != 200 && (!traceRE.MatchString(got.body) || len(s.Posts()) != 0) {
				t.Errorf("answer %s without fbtrace_id, or %d posts", got.body, len(s.Posts()))
			}
			if tt.code == 190 && !strings.HasPrefix(got.header.Get("WWW-Authenticate"), `OAuth "Facebook Platform" "invalid_token"`) {
				t.Errorf("WWW-Authenticate %q", got.header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestComment(t *testing.T) {
	s := graphapi.Start(t, page, token)
	pid := id(t, send(t, http.DefaultClient, "POST", feed(s), withToken("message", "web-3 is down"), nil))
	form := withToken("message", "Resolved: web-3 is up again.")
	got := send(t, http.DefaultClient, "POST", s.URL+"/v21.0/"+pid+"/comments", form, nil)
	if got.status != 200 {
		t.Fatalf("status %d %s", got.status, got.body)
	}
	cid := id(t, got)
	_, post, _ := strings.Cut(pid, "_")
	if !regexp.MustCompile(`^` + post + `_[0-9]{16}$`).MatchString(cid) {
		t.Errorf("comment ID %q, want %s_ and digits", cid, post)
	}
	cs := s.Comments()
	want := []graphapi.Comment{{
		ID: cid, PostID: pid, Message: "Resolved: web-3 is up again.",
		Arrival: graphapi.Arrival{Version: "v21.0", TokenIn: "form", RequestURI: "/v21.0/" + pid + "/comments", Raw: form.Encode()},
	}}
	if diff := cmp.Diff(cs, want, cmpIgnoring("Received", "Header")); diff != "" {
		t.Errorf("comments (-got +want):\n%s", diff)
	}
	// A comment needs a message too.
	if got := send(t, http.DefaultClient, "POST", s.URL+"/v21.0/"+pid+"/comments", withToken(), nil); got.status != 400 {
		t.Errorf("comment without message: %d", got.status)
	}
	if got := send(t, http.DefaultClient, "POST", s.URL+"/v21.0/"+pid+"/comments", withToken("message", strings.Repeat("a", 8001)), nil); got.status != 400 {
		t.Errorf("comment of 8001: %d", got.status)
	}
}

func TestFaults(t *testing.T) {
	providertest.Faults(t, func(t *testing.T) providertest.FaultRig[graphapi.Fault] {
		s := graphapi.Start(t, page, token)
		return providertest.FaultRig[graphapi.Fault]{
			FailNext: func(f graphapi.Fault) { s.FailNext(1, f) },
			Send: func(t *testing.T) providertest.Answer {
				got := send(t, http.DefaultClient, "POST", feed(s), withToken("message", "x"), nil)
				return providertest.Answer{Status: got.status, Header: got.header, Body: graphError(got.body)}
			},
			OK:   200,
			Kept: func() int { return len(s.Posts()) },
		}
	}, []providertest.Faulted[graphapi.Fault]{
		{Name: "500", Fault: graphapi.ServerError(500), Status: 500,
			Body: `{"error":{"message":"An unknown error has occurred.","type":"OAuthException","code":1,"fbtrace_id":"TRACE"}}`},
		{Name: "503", Fault: graphapi.ServerError(503), Status: 503,
			Body: `{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"is_transient":true,"fbtrace_id":"TRACE"}}`},
		{Name: "app rate limit", Fault: graphapi.RateLimited(4, 0), Status: 400,
			Body:   `{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"is_transient":true,"fbtrace_id":"TRACE"}}`,
			Header: map[string]string{"X-App-Usage": `{"call_count":100,"total_cputime":100,"total_time":100}`, "X-Business-Use-Case-Usage": ""}},
		{Name: "user rate limit", Fault: graphapi.RateLimited(17, 0), Status: 400,
			Body: `{"error":{"message":"(#17) User request limit reached","type":"OAuthException","code":17,"is_transient":true,"fbtrace_id":"TRACE"}}`},
		{Name: "page rate limit with a time", Fault: graphapi.RateLimited(32, 90*time.Second), Status: 400,
			Body:   `{"error":{"message":"(#32) Page request limit reached","type":"OAuthException","code":32,"fbtrace_id":"TRACE"}}`,
			Header: map[string]string{"X-Business-Use-Case-Usage": `{"` + page + `":[{"type":"pages","call_count":100,"total_cputime":100,"total_time":100,"estimated_time_to_regain_access":2}]}`}},
		{Name: "613", Fault: graphapi.RateLimited(613, 0), Status: 400,
			Body: `{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613,"fbtrace_id":"TRACE"}}`},
		{Name: "invalid token", Fault: graphapi.InvalidToken(), Status: 400,
			Body:   `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"TRACE"}}`,
			Header: map[string]string{"WWW-Authenticate": `OAuth "Facebook Platform" "invalid_token" "Invalid OAuth access token - Cannot parse access token"`}},
		{Name: "expired token", Fault: graphapi.Fault{Status: 400, Code: 190, Subcode: 463, Message: "Error validating access token: Session has expired."}, Status: 400,
			Body: `{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"TRACE"}}`},
		{Name: "permission", Fault: graphapi.Refused(200), Status: 400,
			Body: `{"error":{"message":"(#200) If posting to a page, requires both pages_read_engagement and pages_manage_posts permission with page token","type":"OAuthException","code":200,"fbtrace_id":"TRACE"}}`},
		{Name: "transient on command", Fault: graphapi.Fault{Status: 400, Code: 368, Transient: true}, Status: 400,
			Body: `{"error":{"message":"The action attempted has been deemed abusive or is otherwise disallowed","type":"OAuthException","code":368,"is_transient":true,"fbtrace_id":"TRACE"}}`},
		{Name: "502 from a proxy", Fault: graphapi.Fault{Status: 502, HTML: "<html>Bad Gateway</html>"}, Status: 502,
			Body: "<html>Bad Gateway</html>", Header: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
	})
}

func TestFaultsOnlyWithTheRightToken(t *testing.T) {
	s := graphapi.Start(t, page, token)
	s.FailNext(1, graphapi.ServerError(503))
	if got := send(t, http.DefaultClient, "POST", feed(s), url.Values{"access_token": {"EAAwrong"}, "message": {"x"}}, nil); got.status != 400 {
		t.Errorf("wrong token: %d, want 400 before any fault", got.status)
	}
	if got := send(t, http.DefaultClient, "POST", feed(s), withToken("message", "x"), nil); got.status != 503 {
		t.Errorf("then: %d, want the queued 503", got.status)
	}
}

func TestFailNextFailAndRecover(t *testing.T) {
	s := graphapi.Start(t, page, token)
	s.FailNext(1, graphapi.ServerError(503))
	s.FailNext(1, graphapi.RateLimited(613, 0))
	s.Fail(graphapi.ServerError(500))
	var got []int
	for range 4 {
		got = append(got, send(t, http.DefaultClient, "POST", feed(s), withToken("message", "x"), nil).status)
	}
	if diff := cmp.Diff(got, []int{503, 400, 500, 500}); diff != "" {
		t.Errorf("statuses (-got +want):\n%s", diff)
	}
	s.Fail(graphapi.Fault{})
	if g := send(t, http.DefaultClient, "POST", feed(s), withToken("message", "x"), nil).status; g != 200 {
		t.Errorf("after Fail(Fault{}): %d", g)
	}
	s.Fail(graphapi.InvalidToken())
	s.FailNext(3, graphapi.ServerError(503))
	s.Recover()
	if g := send(t, http.DefaultClient, "POST", feed(s), withToken("message", "x"), nil).status; g != 200 {
		t.Errorf("after Recover: %d", g)
	}
	var codes []int
	for _, a := range s.Attempts() {
		codes = append(codes, a.Code)
	}
	if diff := cmp.Diff(codes, []int{2, 613, 1, 1, 0, 0}); diff != "" {
		t.Errorf("attempt codes (-got +want):\n%s", diff)
	}
}

func TestFailIfComments(t *testing.T) {
	s := graphapi.Start(t, page, token)
	var seen []graphapi.Request
	s.FailIf(func(r graphapi.Request) *graphapi.Fault {
		seen = append(seen, r)
		if r.Edge == "comments" {
			f := graphapi.ServerError(500)
			return &f
		}
		return nil
	})
	pid := id(t, send(t, http.DefaultClient, "POST", feed(s), withToken("message", "down", "link", "https://s.example/"), nil))
	if got := send(t, http.DefaultClient, "POST", s.URL+"/v21.0/"+pid+"/comments", withToken("message", "up"), nil); got.status != 500 {
		t.Errorf("comment: %d", got.status)
	}
	want := []graphapi.Request{
		{N: 1, Edge: "feed", Object: page, Message: "down", Link: "https://s.example/"},
		{N: 2, Edge: "comments", Object: pid, Message: "up"},
	}
	if diff := cmp.Diff(seen, want); diff != "" {
		t.Errorf("rule saw (-got +want):\n%s", diff)
	}
	s.FailIf(nil)
	if got := send(t, http.DefaultClient, "POST", s.URL+"/v21.0/"+pid+"/comments", withToken("message", "up"), nil); got.status != 200 {
		t.Errorf("after FailIf(nil): %d", got.status)
	}
}

func TestWaitFor(t *testing.T) {
	s := graphapi.Start(t, page, token)
	go func() {
		form := withToken("message", "down")
		resp, err := http.PostForm(feed(s), form)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ans map[string]string
		_ = json.Unmarshal(b, &ans)
		resp, err = http.PostForm(s.URL+"/v21.0/"+ans["id"]+"/comments", withToken("message", "up"))
		if err == nil {
			resp.Body.Close()
		}
	}()
	posts, comments, err := s.WaitFor(ctx(t), 1, 1)
	if err != nil || len(posts) != 1 || len(comments) != 1 {
		t.Fatalf("WaitFor: %d posts, %d comments, %v", len(posts), len(comments), err)
	}
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, _, err = s.WaitFor(short, 2, 1)
	if err == nil || !strings.Contains(err.Error(), `1 post(s) and 1 comment(s) arrived: post `) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor(2, 1) = %v; want a deadline error listing what came", err)
	}
}

func TestTransport(t *testing.T) {
	s := graphapi.Start(t, page, token)
	got := send(t, s.Client(), "POST", "https://graph.facebook.com/v21.0/"+page+"/feed", withToken("message", "x"), nil)
	if got.status != 200 {
		t.Errorf("through Transport: %d %s", got.status, got.body)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range [][2]string{{"", token}, {"12a", token}, {page, ""}, {page, "two words"}} {
		if s, err := graphapi.New(c[0], c[1]); err == nil {
			s.Close()
			t.Errorf("New(%q, %q) succeeded", c[0], c[1])
		}
	}
}

func cmpIgnoring(fields ...string) cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		for _, f := range fields {
			if p.Last().String() == "."+f {
				return true
			}
		}
		return false
	}, cmp.Ignore())
}

// TestStandInContract: the stand-in's faults, stalls and transport work
// as every stand-in's do.
func TestStandInContract(t *testing.T) {
	providertest.RunStandIn(t, func(t *testing.T) providertest.StandIn {
		s := graphapi.Start(t, page, token)
		hc := s.Client()
		return providertest.StandIn{
			Post: func(ctx context.Context, key string) (int, error) {
				return providertest.Post(ctx, hc, "https://graph.facebook.com/v21.0/"+page+"/feed",
					"application/x-www-form-urlencoded", withToken("message", key).Encode())
			},
			OK:          http.StatusOK,
			Unavailable: func() { s.Fail(graphapi.ServerError(503)) },
			Stall:       func() { s.Fail(graphapi.Stall()) },
			StallNext:   func() { s.FailNext(1, graphapi.Stall()) },
			Recover:     s.Recover, Release: s.Release,
			Stalled: s.Stalled, Connections: s.Connections,
			Attempts: func() int { return len(s.Attempts()) },
			Accepted: func() []string {
				return providertest.Keys(s.Posts(), func(p graphapi.Post) string { return p.Message })
			},
			WaitFor: func(ctx context.Context, n int) (int, error) {
				posts, _, err := s.WaitFor(ctx, n, 0)
				return len(posts), err
			},
			Close: s.Close, Client: hc, API: "graph.facebook.com",
		}
	})
}
