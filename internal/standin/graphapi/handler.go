package graphapi

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

const (
	maxBody = 1 << 20
	// maxPost and maxComment are Graph's limits on a message, in
	// characters.
	maxPost    = 63206
	maxComment = 8000
)

// pathRE matches the two edges the stand-in serves: a page's feed and a
// post's comments, under any version v<N>.0.
var pathRE = regexp.MustCompile(`^/(v[0-9]+\.0)/([^/]+)/(feed|comments)/?$`)

// graphError is the body of Graph's error answers; the field order is
// Graph's.
type graphError struct {
	Error graphErrorBody `json:"error"`
}

type graphErrorBody struct {
	Message     string `json:"message"`
	Type        string `json:"type"`
	Code        int    `json:"code"`
	Subcode     int    `json:"error_subcode,omitempty"`
	IsTransient bool   `json:"is_transient,omitempty"`
	FBTraceID   string `json:"fbtrace_id"`
}

// answer is what the stand-in says to one request.
type answer struct {
	status int
	code   int
	header map[string]string
	body   any    // encoded as JSON
	html   string // sent instead of body when set
	why    string
}

// params is what a request carries: its parameters from the query and a
// form body, and the access tokens it names and where.
type params struct {
	values url.Values
	tokens []string
	where  []string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	a := Attempt{Time: now, Method: r.Method, RequestURI: r.RequestURI, Raw: string(raw)}
	if err != nil {
		s.respond(w, a, graphAnswer(http.StatusRequestEntityTooLarge, CodeParameter, 0, "(#100) The request body is too large", "OAuthException", "body over 1 MiB or cut short"))
		return
	}
	p := readParams(r, raw)

	switch {
	case len(p.tokens) == 0:
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeTokenMissing, 0, "", "OAuthException", "no access token"))
		return
	case !s.tokensGood(p.tokens):
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeToken, 0, "", "OAuthException", "wrong access token"))
		return
	}

	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeUnknownPath, 0, "Unknown path components: "+r.URL.Path, "OAuthException", "no such path"))
		return
	}
	version, object, edge := m[1], m[2], m[3]
	noSuchObject := func(why string) {
		msg := fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, "+
			"or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
			strings.ToLower(r.Method), object)
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeParameter, subcodeNoSuchObject, msg, "GraphMethodException", why))
	}
	switch {
	case r.Method != http.MethodPost:
		noSuchObject("the stand-in only creates: " + r.Method)
		return
	case edge == "feed" && object != s.PageID:
		noSuchObject("not the page's ID")
		return
	case edge == "comments" && !s.known(object):
		noSuchObject("no such post")
		return
	}

	req := Request{Edge: edge, Object: object, Message: p.values.Get("message"), Link: p.values.Get("link")}
	if f := s.fault(req); f != nil {
		if !f.Stall {
			s.respond(w, a, s.faultAnswer(*f))
			return
		}
		gone := func() { a.Why = "the client gave up on a stalled request"; s.record(a) }
		if !s.Held(r, gone, func() { s.respond(w, a, s.faultAnswer(ServerError(http.StatusServiceUnavailable))) }) {
			return
		}
	}

	limit := maxPost
	if edge == "comments" {
		limit = maxComment
	}
	switch {
	case strings.TrimSpace(req.Message) == "":
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeParameter, 0, "(#100) Missing message or attachment", "OAuthException", "no message"))
		return
	case utf8.RuneCountInString(req.Message) > limit:
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeParameter, 0,
			fmt.Sprintf("(#100) Param message must be at most %d characters long", limit), "OAuthException", "message too long"))
		return
	case edge == "feed" && req.Link != "" && !webURL(req.Link):
		s.respond(w, a, graphAnswer(http.StatusBadRequest, CodeParameter, 0, "(#100) The link parameter must be a valid URL", "OAuthException", "link not a URL"))
		return
	}

	s.respond(w, a, s.accept(req, version, strings.Join(p.where, ","), now, r, raw))
}

// readParams gathers a request's parameters from its query and from a
// form body, urlencoded or multipart, as Graph reads them, and the access
// tokens it carries: access_token parameters and an Authorization header
// of scheme Bearer or OAuth.
func readParams(r *http.Request, raw []byte) params {
	var p params
	p.values = url.Values{}
	take := func(v url.Values, where string) {
		for k, vs := range v {
			if k == "access_token" {
				for _, t := range vs {
					p.tokens, p.where = append(p.tokens, t), append(p.where, where)
				}
				continue
			}
			p.values[k] = append(p.values[k], vs...)
		}
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
		take(q, "query")
	}
	mt, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if f, err := url.ParseQuery(string(raw)); err == nil {
			take(f, "form")
		}
	case "multipart/form-data":
		if f, err := multipart.NewReader(bytes.NewReader(raw), mp["boundary"]).ReadForm(maxBody); err == nil {
			take(f.Value, "form")
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "OAuth") {
			p.tokens, p.where = append(p.tokens, strings.TrimSpace(tok)), append(p.where, "header")
		} else {
			p.tokens, p.where = append(p.tokens, ""), append(p.where, "header")
		}
	}
	return p
}

// tokensGood reports whether every token a request carries is the page's.
func (s *Server) tokensGood(tokens []string) bool {
	good := 1
	for _, t := range tokens {
		good &= subtle.ConstantTimeCompare([]byte(t), []byte(s.Token))
	}
	return good == 1
}

// known reports whether id names a post the stand-in accepted.
func (s *Server) known(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.posts {
		if p.ID == id {
			return true
		}
	}
	return false
}

func webURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

// accept stores a post or a comment and answers with its ID.
func (s *Server) accept(req Request, version, tokenIn string, now time.Time, r *http.Request, raw []byte) answer {
	arrival := Arrival{Version: version, TokenIn: tokenIn, Received: now, RequestURI: r.RequestURI, Raw: string(raw), Header: r.Header.Clone()}
	s.mu.Lock()
	var id string
	if req.Edge == "feed" {
		id = s.PageID + "_" + s.nextID()
		s.posts = append(s.posts, Post{ID: id, Message: req.Message, Link: req.Link, Arrival: arrival})
	} else {
		_, post, _ := strings.Cut(req.Object, "_")
		id = post + "_" + s.nextID()
		s.comments = append(s.comments, Comment{ID: id, PostID: req.Object, Message: req.Message, Arrival: arrival})
	}
	s.mu.Unlock()
	// Stored before answering, so that a client that has its answer finds
	// the object in Posts or Comments.
	s.Arrived()
	return answer{
		status: http.StatusOK,
		header: map[string]string{"facebook-api-version": version},
		body:   map[string]string{"id": id},
	}
}

func graphAnswer(status, code, subcode int, msg, typ, why string) answer {
	if msg == "" {
		msg = message(code)
	}
	return answer{
		status: status,
		code:   code,
		body: graphError{Error: graphErrorBody{
			Message:     msg,
			Type:        typ,
			Code:        code,
			Subcode:     subcode,
			IsTransient: transient(code),
			FBTraceID:   traceID(),
		}},
		why: why,
	}
}

func (s *Server) faultAnswer(f Fault) answer {
	code := f.Code
	if code == 0 {
		code = defaultCode(f.Status)
	}
	ans := graphAnswer(f.Status, code, f.Subcode, f.Message, "OAuthException", fmt.Sprintf("told to fail with %d, code %d", f.Status, code))
	if f.Transient {
		e := ans.body.(graphError)
		e.Error.IsTransient = true
		ans.body = e
	}
	if rateLimit(code) {
		ans.header = map[string]string{"X-App-Usage": `{"call_count":100,"total_cputime":100,"total_time":100}`}
		if f.RegainAccess > 0 {
			minutes := int(math.Ceil(f.RegainAccess.Minutes()))
			ans.header["X-Business-Use-Case-Usage"] = `{"` + s.PageID + `":[{"type":"pages","call_count":100,"total_cputime":100,"total_time":100,"estimated_time_to_regain_access":` + strconv.Itoa(minutes) + `}]}`
		}
	}
	ans.html = f.HTML
	return ans
}

// traceID is a new fbtrace_id: Graph gives every answer one, to quote to
// Meta's support.
func traceID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := make([]byte, 23)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "A" + string(b[1:])
}

// respond records the attempt and writes ans.
func (s *Server) respond(w http.ResponseWriter, a Attempt, ans answer) {
	a.Status, a.Code, a.Why = ans.status, ans.code, ans.why
	s.record(a)
	for k, v := range ans.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("x-fb-trace-id", traceID()[:11])
	if w.Header().Get("X-App-Usage") == "" {
		w.Header().Set("X-App-Usage", `{"call_count":1,"total_cputime":1,"total_time":1}`)
	}
	if ans.html != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(ans.status)
		_, _ = io.WriteString(w, ans.html)
		return
	}
	// Graph says what is wrong with a token in the header too.
	switch ans.code {
	case CodeToken:
		w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_token" "`+message(CodeToken)+`"`)
	case CodeTokenMissing:
		w.Header().Set("WWW-Authenticate", `OAuth "Facebook Platform" "invalid_request" "`+message(CodeTokenMissing)+`"`)
	}
	standin.WriteJSON(w, ans.status, "application/json; charset=UTF-8", ans.body)
}
