// Package fbposter is the escalator's Facebook channel: it posts an outage
// notice to the provider's Facebook page, and the resolution as a comment
// on that post, through the Graph API with a page access token and plain
// net/http. It bounds every call by a timeout and by the caller's context,
// tells the bus which failures are worth retrying and how soon, and keeps
// the token, which travels in the request body, out of every error.
package fbposter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/platform/apiurl"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

const (
	// DefaultTimeout bounds one call when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultAPIURL is the Graph API, where calls go when Config.APIURL
	// is empty.
	DefaultAPIURL = "https://graph.facebook.com"
	// DefaultVersion is the Graph API version called when
	// Config.Version is empty.
	DefaultVersion = "v21.0"

	// MaxPost and MaxComment are Graph's limits on a message, in
	// characters.
	MaxPost    = 63206
	MaxComment = 8000
)

var (
	digitsRE  = regexp.MustCompile(`^[0-9]+$`)
	postIDRE  = regexp.MustCompile(`^[0-9]+(_[0-9]+)?$`)
	versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+$`)
)

// Config is the Facebook page to post to and how.
type Config struct {
	// PageID is the page's numeric ID, from the page's About section or
	// Graph's /me/accounts.
	PageID string
	// Token is a page access token with the pages_manage_posts
	// permission; a long-lived one, since nobody renews it by hand.
	Token string
	// APIURL, when set, is where calls go instead of DefaultAPIURL, with
	// their path below it: a stand-in in tests, or a proxy. Plain http
	// is allowed only on loopback, since every call carries the token.
	APIURL string
	// Version is the Graph API version to call, such as "v21.0"; empty
	// is DefaultVersion. Meta retires each version two years after its
	// release.
	Version string
	// Timeout bounds one call, from the first byte sent to the answer
	// read; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Poster posts to a Facebook page as configured. It keeps a pool of
// connections to Graph but no state about posts, so it is safe for
// concurrent use.
type Poster struct {
	cfg  Config
	api  string // APIURL and version, without a trailing slash
	call apicall.Caller
	now  func() time.Time // for a Retry-After given as a date
}

// New checks cfg, reporting every problem at once, and fills in defaults.
// Error texts never hold the token.
func New(cfg Config) (*Poster, error) {
	var problems []error
	if !digitsRE.MatchString(cfg.PageID) {
		problems = append(problems, fmt.Errorf("page ID %q: want the page's numeric ID", cfg.PageID))
	}
	if err := apicall.CheckCredential("token", cfg.Token); err != nil {
		problems = append(problems, err)
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if _, err := apiurl.Check(cfg.APIURL, "send the token in clear text"); err != nil {
		problems = append(problems, err)
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if !versionRE.MatchString(cfg.Version) {
		problems = append(problems, fmt.Errorf("version %q: want a Graph API version like %s", cfg.Version, DefaultVersion))
	}
	timeout, err := apicall.Timeout(cfg.Timeout, DefaultTimeout)
	if err != nil {
		problems = append(problems, err)
	}
	cfg.Timeout = timeout
	if len(problems) > 0 {
		return nil, fmt.Errorf("facebook config: %w", errors.Join(problems...))
	}

	p := &Poster{
		cfg: cfg,
		api: strings.TrimSuffix(cfg.APIURL, "/") + "/" + cfg.Version,
		now: time.Now,
	}
	p.call = apicall.Caller{
		Provider: "facebook", Server: "graph", Timeout: cfg.Timeout,
		Scrub: p.scrub, SecretParams: map[string]string{"access_token": "[token]"},
		Client: apicall.Bound(&http.Client{Transport: apicall.Transport()}, cfg.Timeout),
	}
	return p, nil
}

// Post publishes message on the page's feed, with link attached when it is
// set, and returns the new post's ID, "<page-id>_<post>", which Comment
// takes.
//
// Post returns when Graph answers, when Config.Timeout has passed, or
// when ctx ends, whichever is first. A failure is a *bus.ProviderError,
// with what Graph said as a *GraphError among its causes. One that
// posting again cannot fix (an invalid or expired token, a missing
// permission, a message Graph refuses: any 4xx answer but a rate limit or
// a transient error) has Retry false and counts as bus.IsPermanent; any
// other, ctx ending included, is worth a retry, after its RetryAfter if
// Graph said how long. Error texts never hold the token.
func (p *Poster) Post(ctx context.Context, message, link string) (string, error) {
	const what = "post"
	if why := checkMessage(message, MaxPost); why != "" {
		return "", p.call.Refuse(what, why)
	}
	if link != "" {
		if u, err := url.Parse(link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			return "", p.call.Refuse(what, fmt.Sprintf("link %q is not an absolute http or https URL", link))
		}
	}
	return p.create(ctx, what, p.api+"/"+p.cfg.PageID+"/feed", postForm(message, link, p.cfg.Token))
}

// Comment publishes message as a comment on the post postID, as Post
// returned it, and returns the comment's ID. It fails, and is classified,
// as Post does.
func (p *Poster) Comment(ctx context.Context, postID, message string) (string, error) {
	what := "comment on " + postID
	if !postIDRE.MatchString(postID) {
		return "", p.call.Refuse("comment", fmt.Sprintf("%q is not a post ID: want digits, or the page's ID, '_' and digits", postID))
	}
	if why := checkMessage(message, MaxComment); why != "" {
		return "", p.call.Refuse(what, why)
	}
	return p.create(ctx, what, p.api+"/"+postID+"/comments", commentForm(message, p.cfg.Token))
}

func checkMessage(message string, limit int) string {
	switch {
	case strings.TrimSpace(message) == "":
		return "the message is empty"
	case !utf8.ValidString(message):
		return "the message is not valid UTF-8"
	case utf8.RuneCountInString(message) > limit:
		return fmt.Sprintf("the message has %d characters; Graph takes at most %d", utf8.RuneCountInString(message), limit)
	}
	return ""
}

// postForm is the body of a request to post message with link. The token
// goes in the body, where no log of URLs records it. The tests hold the
// bytes that go on the wire.
func postForm(message, link, token string) string {
	v := url.Values{"message": {message}, "access_token": {token}}
	if link != "" {
		v.Set("link", link)
	}
	return v.Encode()
}

// commentForm is the body of a request to comment message.
func commentForm(message, token string) string {
	return url.Values{"message": {message}, "access_token": {token}}.Encode()
}

// create makes one POST to endpoint with the form body and returns the
// ID of the object Graph created.
func (p *Poster) create(ctx context.Context, what, endpoint, body string) (string, error) {
	ans, err := p.call.Post(ctx, what, endpoint, "application/x-www-form-urlencoded", []byte(body))
	if err != nil {
		return "", err
	}
	if ans.Status == http.StatusOK {
		var created struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(ans.Body, &created); err == nil && postIDRE.MatchString(created.ID) {
			return created.ID, nil
		}
	}
	return "", p.answered(what, ans)
}

// GraphError is what Graph said was wrong with a call. A failed call's
// *bus.ProviderError holds it among its causes, for errors.As.
type GraphError struct {
	// Code and Subcode are Graph's error code and error_subcode, such as
	// 190 for an invalid token or 32 for a page's rate limit.
	Code, Subcode int
	// Type is Graph's error type, such as "OAuthException".
	Type string
	// Message is Graph's error message, scrubbed of the token.
	Message string
	// TraceID is Graph's fbtrace_id, which Meta's support asks for.
	TraceID string
}

func (g *GraphError) Error() string { return fmt.Sprintf("graph error %d: %s", g.Code, g.Message) }

// graphError is the body of Graph's error answers.
type graphError struct {
	Error *struct {
		Message     string `json:"message"`
		Type        string `json:"type"`
		Code        int    `json:"code"`
		Subcode     int    `json:"error_subcode"`
		IsTransient bool   `json:"is_transient"`
		FBTraceID   string `json:"fbtrace_id"`
	} `json:"error"`
}

// answered describes and classifies an answer that holds no created
// object.
func (p *Poster) answered(what string, ans *apicall.Answer) error {
	e := &bus.ProviderError{Status: ans.Status, Retry: apicall.Retry(ans.Status)}
	desc := fmt.Sprintf("graph answered %d", ans.Status)
	var ge graphError
	var cause *GraphError
	transient := false
	if json.Unmarshal(ans.Body, &ge) == nil && ge.Error != nil {
		g := ge.Error
		cause = &GraphError{Code: g.Code, Subcode: g.Subcode, Type: g.Type, Message: p.scrub(g.Message), TraceID: g.FBTraceID}
		transient = g.IsTransient
		desc += fmt.Sprintf(", code %d", g.Code)
		if g.Subcode != 0 {
			desc += fmt.Sprintf(" (subcode %d)", g.Subcode)
		}
		if g.Type != "" {
			desc += " " + g.Type
		}
		if g.Message != "" {
			desc += ": " + g.Message
		}
		if g.FBTraceID != "" {
			desc += " [fbtrace_id " + g.FBTraceID + "]"
		}
	}
	// A 4xx is refused again, unless Graph says its error goes away
	// with time.
	if cause != nil && retryableCode(cause.Code) || transient {
		e.Retry = true
	}
	if ans.Status == http.StatusOK {
		desc += " without an ID"
	}
	if e.Retry {
		e.RetryAfter = p.regainAccess(ans.Header)
	}
	if e.RetryAfter > 0 {
		desc += fmt.Sprintf("; access regained in %v", e.RetryAfter)
	}
	if cause == nil {
		return p.call.Fail(what, e, desc, nil)
	}
	return p.call.Fail(what, e, desc, cause)
}

// retryableCode reports whether Graph's error code is one that goes away
// with time: an unknown or service error, or a rate limit.
func retryableCode(code int) bool {
	switch code {
	case 1, 2, 4, 17, 32, 341, 613:
		return true
	}
	return 80001 <= code && code <= 80014 // business use case rate limits
}

// regainAccess is how long until Graph takes calls again, as its answer
// says: the largest estimated_time_to_regain_access, in minutes, of an
// X-Business-Use-Case-Usage header, or a Retry-After in seconds. It is 0
// when neither says.
func (p *Poster) regainAccess(h http.Header) time.Duration {
	var usage map[string][]struct {
		Minutes int `json:"estimated_time_to_regain_access"`
	}
	var most time.Duration
	if json.Unmarshal([]byte(h.Get("X-Business-Use-Case-Usage")), &usage) == nil {
		for _, entries := range usage {
			for _, u := range entries {
				most = max(most, time.Duration(u.Minutes)*time.Minute)
			}
		}
	}
	if most > 0 {
		return most
	}
	return apicall.RetryAfter(h.Get("Retry-After"), p.now())
}

// scrub takes the token out of text, as it is and URL-encoded, in case
// Graph or a library ever echoes it.
func (p *Poster) scrub(text string) string {
	return apicall.Scrub(text, apicall.Secret{Value: p.cfg.Token, Name: "[token]"})
}
