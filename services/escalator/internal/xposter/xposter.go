// Package xposter is the escalator's X channel: it posts an outage notice
// to the provider's X account, and the resolution as a reply to it,
// through X's API v2 (POST /2/tweets) signed with OAuth 1.0a in user
// context by dghubble/oauth1. It bounds every post by a timeout and by the
// caller's context, tells the bus which failures are worth retrying and
// how soon, reports X's refusal of a duplicate apart from other refusals,
// and fits texts into X's 280 characters.
package xposter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dghubble/oauth1"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/platform/apiurl"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/xtext"
)

const (
	// DefaultTimeout bounds one Post when Config.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultAPIURL is X's API, where posts go when Config.APIURL is
	// empty.
	DefaultAPIURL = "https://api.x.com"
)

var idRE = regexp.MustCompile(`^[0-9]{1,19}$`)

// ErrDuplicate is what errors.Is finds in the error of a post X refused
// because the account posted the same text before. A caller that retries
// its own post after a timeout gets it when the first attempt got through,
// and may count the post as made; the error also counts as
// bus.IsPermanent, since sending the text again can never succeed.
var ErrDuplicate = errors.New("x refused a duplicate of an earlier post")

// Config is the X account to post as and how. The four credentials come
// from the app's page in X's developer portal: the app's API key and
// secret, and the access token and secret of the account, generated with
// read and write permission.
type Config struct {
	ConsumerKey    string
	ConsumerSecret string
	Token          string
	TokenSecret    string
	// APIURL, when set, is where posts go instead of DefaultAPIURL,
	// with their path below it: a stand-in, in tests. The OAuth signature
	// covers the URL, so X takes only requests signed for its own; to
	// reach X through a proxy, set HTTPS_PROXY, which keeps the URL.
	// Plain http is allowed only on loopback.
	APIURL string
	// Timeout bounds one Post, from the first byte sent to the answer
	// read; 0 is DefaultTimeout.
	Timeout time.Duration
}

// Poster posts to X as configured. It keeps a pool of connections to X
// but no state about posts, so it is safe for concurrent use.
type Poster struct {
	cfg      Config
	endpoint string // the URL of POST /2/tweets
	call     apicall.Caller
	now      func() time.Time // for the end of a rate-limit window
}

// New checks cfg, reporting every problem at once, and fills in defaults.
// Error texts never hold a credential.
func New(cfg Config) (*Poster, error) {
	var problems []error
	for _, c := range []struct{ name, value string }{
		{"consumer key", cfg.ConsumerKey}, {"consumer secret", cfg.ConsumerSecret},
		{"access token", cfg.Token}, {"access token secret", cfg.TokenSecret},
	} {
		if err := apicall.CheckCredential(c.name, c.value); err != nil {
			problems = append(problems, err)
		}
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if _, err := apiurl.Check(cfg.APIURL, "let anyone on the way read and replay signed requests"); err != nil {
		problems = append(problems, err)
	}
	timeout, err := apicall.Timeout(cfg.Timeout, DefaultTimeout)
	if err != nil {
		problems = append(problems, err)
	}
	cfg.Timeout = timeout
	if len(problems) > 0 {
		return nil, fmt.Errorf("x config: %w", errors.Join(problems...))
	}

	p := &Poster{
		cfg:      cfg,
		endpoint: strings.TrimSuffix(cfg.APIURL, "/") + "/2/tweets",
		now:      time.Now,
	}
	p.call = apicall.Caller{Provider: "x", Server: "x", Timeout: cfg.Timeout, Scrub: p.scrub}
	p.call.Client = p.newClient(apicall.Transport())
	return p, nil
}

// newClient builds the client that signs every request with OAuth 1.0a
// and sends it through base. dghubble/oauth1 takes the transport to sign
// on top of from the context it is built with; the request's own context
// bounds each request.
func (p *Poster) newClient(base http.RoundTripper) *http.Client {
	bctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: base})
	hc := oauth1.NewConfig(p.cfg.ConsumerKey, p.cfg.ConsumerSecret).
		Client(bctx, oauth1.NewToken(p.cfg.Token, p.cfg.TokenSecret))
	return apicall.Bound(hc, p.cfg.Timeout)
}

// Post publishes text on the account and returns the new post's ID; with
// replyTo, the ID of an earlier post, it publishes text as a reply to it,
// which keeps an outage's notices in one thread. text goes as it is:
// callers pass it through Fit first.
//
// Post returns when X answers, when Config.Timeout has passed, or when
// ctx ends, whichever is first. A failure is a *bus.ProviderError, with
// what X said as a *Problem among its causes. One that posting again
// cannot fix (text X will not take, wrong credentials, an app without
// write permission, a duplicate: any 4xx answer but 408 and 429) has Retry
// false and counts as bus.IsPermanent; a duplicate also matches
// ErrDuplicate. Any other failure, ctx ending included, is worth a retry,
// after its RetryAfter if X said how long. Error texts never hold a
// credential.
func (p *Poster) Post(ctx context.Context, text, replyTo string) (string, error) {
	what := "post"
	if replyTo != "" {
		what = "reply to " + replyTo
	}
	switch n := xtext.Bound(text); {
	case strings.TrimSpace(text) == "":
		return "", p.call.Refuse(what, "the text is empty")
	case !utf8.ValidString(text):
		return "", p.call.Refuse(what, "the text is not valid UTF-8")
	case n > xtext.MaxLength:
		return "", p.call.Refuse(what, fmt.Sprintf("the text counts %d characters by X's count; X takes at most %d (Fit shortens it)", n, xtext.MaxLength))
	case replyTo != "" && !idRE.MatchString(replyTo):
		return "", p.call.Refuse("reply", fmt.Sprintf("%q is not a post ID: want up to 19 digits", replyTo))
	}

	ans, err := p.call.Post(ctx, what, p.endpoint, "application/json", requestBody(text, replyTo))
	if err != nil {
		return "", err
	}
	if ans.Status == http.StatusCreated {
		var created struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(ans.Body, &created); err == nil && idRE.MatchString(created.Data.ID) {
			return created.Data.ID, nil
		}
		return "", p.call.Fail(what, &bus.ProviderError{Status: ans.Status, Retry: true},
			"x answered 201 without a post ID", nil)
	}
	return "", p.answered(what, ans)
}

// requestBody is the JSON of a request to post text, in reply to replyTo
// when it is set. The tests hold the bytes that go on the wire.
func requestBody(text, replyTo string) []byte {
	type reply struct {
		InReplyToTweetID string `json:"in_reply_to_tweet_id"`
	}
	v := struct {
		Text  string `json:"text"`
		Reply *reply `json:"reply,omitempty"`
	}{Text: text}
	if replyTo != "" {
		v.Reply = &reply{InReplyToTweetID: replyTo}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "&" and "<" are common in alarms, and X takes them as they are
	_ = enc.Encode(v)        // strings and a pointer to strings always encode
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Problem is what X said was wrong with a post. A failed Post's
// *bus.ProviderError holds it among its causes, for errors.As; a
// duplicate also matches ErrDuplicate.
type Problem struct {
	// Detail is what X said, such as "You are not allowed to create a
	// Tweet with duplicate content.", scrubbed of the credentials.
	Detail string
	// Duplicate says that X refused the text as one the account posted
	// before.
	Duplicate bool
}

func (p *Problem) Error() string { return p.Detail }

// Is makes errors.Is(err, ErrDuplicate) true for a duplicate.
func (p *Problem) Is(target error) bool { return target == ErrDuplicate && p.Duplicate }

// problem is the body of X's error answers: RFC 7807 fields, and the
// errors list of a request that breaks the schema.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// answered describes and classifies an answer other than 201.
func (p *Poster) answered(what string, ans *apicall.Answer) error {
	e := &bus.ProviderError{Status: ans.Status, Retry: apicall.Retry(ans.Status)}
	pb := &Problem{}
	desc := fmt.Sprintf("x answered %d %s", ans.Status, http.StatusText(ans.Status))
	var pr problem
	if json.Unmarshal(ans.Body, &pr) == nil {
		var msgs []string
		for _, m := range pr.Errors {
			if m.Message != "" {
				msgs = append(msgs, m.Message)
			}
		}
		pb.Detail = pr.Detail
		if len(msgs) > 0 {
			pb.Detail = strings.Join(append([]string{pr.Detail}, msgs...), " ")
			pb.Detail = strings.TrimSpace(pb.Detail)
		}
		if pb.Detail != "" {
			desc += ": " + pb.Detail
		}
	}
	// A 2xx or 3xx that is not a created post is worth a retry: X may or
	// may not have it, and a retry finds out, as a duplicate if it does.
	switch s := ans.Status; {
	case s == http.StatusTooManyRequests:
		e.RetryAfter = p.rateLimitReset(ans.Header)
	case s == http.StatusForbidden && strings.Contains(strings.ToLower(pb.Detail), "duplicate content"):
		pb.Duplicate = true
	}
	if e.RetryAfter > 0 {
		desc += fmt.Sprintf("; the rate-limit window starts again in %v", e.RetryAfter)
	}
	if pb.Detail == "" && !pb.Duplicate {
		return p.call.Fail(what, e, desc, nil)
	}
	pb.Detail = p.scrub(pb.Detail)
	return p.call.Fail(what, e, desc, pb)
}

// rateLimitReset is how long until X's rate-limit window starts again:
// x-rate-limit-reset, in epoch seconds, or else a Retry-After in seconds.
// It is 0 when neither says, or when the time is past.
func (p *Poster) rateLimitReset(h http.Header) time.Duration {
	now := p.now()
	if v, err := strconv.ParseInt(strings.TrimSpace(h.Get("x-rate-limit-reset")), 10, 64); err == nil {
		if d := time.Unix(v, 0).Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return apicall.RetryAfter(h.Get("Retry-After"), now)
}

// scrub takes the credentials out of text, in case X or a library ever
// echoes them. The consumer key and the access token are sent with every
// request, but they still say which app and account to attack.
func (p *Poster) scrub(text string) string {
	return apicall.Scrub(text,
		apicall.Secret{Value: p.cfg.ConsumerSecret, Name: "[consumer secret]"},
		apicall.Secret{Value: p.cfg.TokenSecret, Name: "[token secret]"},
		apicall.Secret{Value: p.cfg.ConsumerKey, Name: "[consumer key]"},
		apicall.Secret{Value: p.cfg.Token, Name: "[access token]"})
}
