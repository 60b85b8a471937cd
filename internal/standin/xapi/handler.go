package xapi

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
	"github.com/tocsin-alarm/tocsin/internal/xtext"
)

// X's texts for the refusals a test may want to match or script.
const (
	// DetailDuplicate is X's detail for a post whose text the account
	// has posted before.
	DetailDuplicate = "You are not allowed to create a Tweet with duplicate content."
	// DetailTooLong is X's detail for text over 280 characters by its
	// count.
	DetailTooLong = "Your Tweet text is too long. For more information on how Twitter determines text length see https://github.com/twitter/twitter-text."
	// DetailReplyNotVisible is X's detail for a reply to a post that does
	// not exist or that the account may not see.
	DetailReplyNotVisible = "You attempted to reply to a Tweet that is deleted or not visible to you."
	// DetailPermissions is X's detail for an app that may read but not
	// post.
	DetailPermissions = "Your client app is not configured with the appropriate oauth1 app permissions for this endpoint."
)

const (
	tweetsPath = "/2/tweets"
	maxBody    = 1 << 20
	// window is X's rate-limit window, which a 429 without a chosen
	// reset time says ends this long from now.
	window = 15 * time.Minute
)

var tweetIDRE = regexp.MustCompile(`^[0-9]{1,19}$`)

// problem is the body of most of X's error answers (RFC 7807); the field
// order is X's.
type problem struct {
	Detail string `json:"detail"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
}

// invalidRequest is the body of X's 400 answer to a request that breaks
// the endpoint's schema.
type invalidRequest struct {
	Errors []invalidParam `json:"errors"`
	Title  string         `json:"title"`
	Detail string         `json:"detail"`
	Type   string         `json:"type"`
}

type invalidParam struct {
	Parameters map[string][]string `json:"parameters,omitempty"`
	Message    string              `json:"message"`
}

// created is X's answer to a post it accepted.
type created struct {
	Data struct {
		EditHistoryTweetIDs []string `json:"edit_history_tweet_ids"`
		ID                  string   `json:"id"`
		Text                string   `json:"text"`
	} `json:"data"`
}

// body is what a request to post may hold: the stand-in takes the two
// fields an alarm needs and refuses the rest, as X refuses fields its
// schema lacks.
type body struct {
	Text  *string `json:"text"`
	Reply *reply  `json:"reply"`
}

type reply struct {
	InReplyToTweetID *string `json:"in_reply_to_tweet_id"`
}

// answer is what the stand-in says to one request.
type answer struct {
	status int
	header map[string]string
	body   any    // encoded as JSON
	html   string // sent instead of body when set
	why    string
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	a := Attempt{Time: now, Method: r.Method, Path: r.URL.Path, Raw: string(raw)}
	switch {
	case err != nil:
		s.respond(w, a, problemAnswer(http.StatusRequestEntityTooLarge, "", "body over 1 MiB or cut short"))
		return
	case r.URL.Path != tweetsPath:
		s.respond(w, a, problemAnswer(http.StatusNotFound, "Sorry, that page does not exist", "no such resource"))
		return
	case r.Method != http.MethodPost:
		ans := problemAnswer(http.StatusMethodNotAllowed, "", "only POST creates a post")
		ans.header = map[string]string{"Allow": http.MethodPost}
		s.respond(w, a, ans)
		return
	}
	if why := s.verify(r, raw, now); why != "" {
		s.respond(w, a, problemAnswer(http.StatusUnauthorized, "", why))
		return
	}

	if f := s.fault(peek(raw)); f != nil {
		if !f.Stall {
			s.respond(w, a, faultAnswer(*f, now))
			return
		}
		gone := func() { a.Why = "the client gave up on a stalled request"; s.record(a) }
		if !s.Held(r, gone, func() { s.respond(w, a, faultAnswer(ServerError(http.StatusServiceUnavailable), now)) }) {
			return
		}
	}

	text, replyTo, bad := check(r, raw)
	if bad != nil {
		s.respond(w, a, *bad)
		return
	}
	s.respond(w, a, s.accept(text, replyTo, now, raw, r.Header))
}

// peek reads text and reply from a body for a FailIf rule, as well as the
// body lets it.
func peek(raw []byte) Request {
	var b struct {
		Text  string `json:"text"`
		Reply struct {
			InReplyToTweetID string `json:"in_reply_to_tweet_id"`
		} `json:"reply"`
	}
	_ = json.Unmarshal(raw, &b)
	return Request{Text: b.Text, ReplyTo: b.Reply.InReplyToTweetID}
}

// check reads a request to post as X does, and returns X's answer for the
// first thing wrong with it, or nil: the schema first (400), then the
// text's length (403).
func check(r *http.Request, raw []byte) (text, replyTo string, bad *answer) {
	invalid := func(why, msg string, param string, value string) (string, string, *answer) {
		p := invalidParam{Message: msg}
		if param != "" {
			p.Parameters = map[string][]string{param: {value}}
		}
		return "", "", &answer{
			status: http.StatusBadRequest,
			body: invalidRequest{
				Errors: []invalidParam{p},
				Title:  "Invalid Request",
				Detail: "One or more parameters to your request was invalid.",
				Type:   "https://api.twitter.com/2/problems/invalid-request",
			},
			why: why,
		}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return invalid("Content-Type "+strconv.Quote(r.Header.Get("Content-Type"))+" is not application/json",
			"Unsupported Content-Type: the body must be application/json", "", "")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b body
	if err := dec.Decode(&b); err != nil {
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			msg = "$." + strings.Trim(name, `"`) + ": is not defined in the schema and the schema does not allow additional properties"
		}
		return invalid("body does not fit the schema: "+err.Error(), msg, "", "")
	}
	if dec.More() {
		return invalid("data after the JSON object", "Request body must be a single JSON object", "", "")
	}
	if b.Reply != nil {
		if b.Reply.InReplyToTweetID == nil {
			return invalid("reply without in_reply_to_tweet_id", "$.reply.in_reply_to_tweet_id: is missing but it is required", "", "")
		}
		replyTo = *b.Reply.InReplyToTweetID
		if !tweetIDRE.MatchString(replyTo) {
			return invalid("reply.in_reply_to_tweet_id is not an ID",
				"The `reply.in_reply_to_tweet_id` query parameter value ["+replyTo+"] does not match ^[0-9]{1,19}$",
				"reply.in_reply_to_tweet_id", replyTo)
		}
	}
	if b.Text == nil || *b.Text == "" {
		return invalid("no text", "$.text: must not be empty when there is no media, poll or quote", "text", "")
	}
	if n := xtext.Length(*b.Text); n > xtext.MaxLength {
		return "", "", &answer{
			status: http.StatusForbidden,
			body:   problem{Detail: DetailTooLong, Type: "about:blank", Title: "Forbidden", Status: http.StatusForbidden},
			why:    fmt.Sprintf("text counts %d by X's count, over %d", n, xtext.MaxLength),
		}
	}
	return *b.Text, replyTo, nil
}

// accept stores a post that passed every check but the ones that depend
// on what was posted before: a reply's target must exist and the text must
// be new. Checking and storing under one lock keeps two requests with the
// same text from both getting in.
func (s *Server) accept(text, replyTo string, now time.Time, raw []byte, h http.Header) answer {
	forbidden := func(detail, why string) answer {
		return answer{status: http.StatusForbidden, why: why,
			body: problem{Detail: detail, Type: "about:blank", Title: "Forbidden", Status: http.StatusForbidden}}
	}
	s.mu.Lock()
	found := replyTo == ""
	for _, p := range s.posts {
		if p.Text == text {
			s.mu.Unlock()
			return forbidden(DetailDuplicate, "the same text as post "+p.ID)
		}
		found = found || p.ID == replyTo
	}
	if !found {
		s.mu.Unlock()
		return forbidden(DetailReplyNotVisible, "no post "+replyTo+" to reply to")
	}
	p := Post{ID: s.newID(now), Text: text, ReplyTo: replyTo, Received: now, Raw: string(raw), Header: h.Clone()}
	s.mu.Unlock()
	// Stored before answering, so that a client that has its answer finds
	// the post in Posts.
	s.store(p)

	var c created
	c.Data.EditHistoryTweetIDs = []string{p.ID}
	c.Data.ID = p.ID
	c.Data.Text = wrapLinks(text)
	return answer{status: http.StatusCreated, body: c}
}

// wrapLinks replaces each URL in text by a t.co link, as X shows a post's
// text: 23 characters, the count every URL is given.
func wrapLinks(text string) string {
	var b strings.Builder
	for _, c := range xtext.Clusters(text) {
		if c.URL {
			b.WriteString("https://t.co/" + randomAlnum(10))
		} else {
			b.WriteString(text[c.Start:c.End])
		}
	}
	return b.String()
}

func randomAlnum(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails, per crypto/rand
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// problemAnswer is X's JSON error for status, with detail or X's text for
// status.
func problemAnswer(status int, detail, why string) answer {
	if detail == "" {
		detail = defaultDetail(status)
	}
	return answer{
		status: status,
		body:   problem{Detail: detail, Type: problemType(status, detail), Title: http.StatusText(status), Status: status},
		why:    why,
	}
}

func faultAnswer(f Fault, now time.Time) answer {
	ans := problemAnswer(f.Status, f.Detail, fmt.Sprintf("told to fail with %d", f.Status))
	if f.Status == http.StatusTooManyRequests {
		reset := f.Reset
		if reset.IsZero() {
			reset = now.Add(window)
		}
		ans.header = map[string]string{
			"x-rate-limit-limit":     "100",
			"x-rate-limit-remaining": "0",
			"x-rate-limit-reset":     strconv.FormatInt(reset.Unix(), 10),
		}
	}
	ans.html = f.HTML
	return ans
}

func defaultDetail(status int) string {
	switch status {
	case http.StatusForbidden:
		return DetailPermissions
	case 0:
		return ""
	}
	return http.StatusText(status)
}

func problemType(status int, detail string) string {
	if status == http.StatusForbidden && detail == DetailPermissions {
		return "https://api.twitter.com/2/problems/oauth1-permissions"
	}
	return "about:blank"
}

// respond records the attempt and writes ans.
func (s *Server) respond(w http.ResponseWriter, a Attempt, ans answer) {
	a.Status, a.Why = ans.status, ans.why
	s.record(a)
	for k, v := range ans.header {
		w.Header().Set(k, v)
	}
	if ans.html != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(ans.status)
		_, _ = io.WriteString(w, ans.html)
		return
	}
	standin.WriteJSON(w, ans.status, "application/json; charset=utf-8", ans.body)
}
