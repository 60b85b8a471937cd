// Package xapi runs a stand-in for X's API v2 on loopback, so that code
// which posts to X can be tested against the API as it answers on the
// wire: POST /2/tweets with a JSON body, authenticated with OAuth 1.0a in
// user context and the HMAC-SHA1 signature verified as X verifies it (the
// signature base built from the method, the URL without its query, the
// query and form parameters and the oauth_* parameters; a JSON body is not
// part of it), the timestamp checked for freshness and the nonce for
// reuse. It refuses what X refuses, with X's JSON: text over 280 characters
// by X's count (a URL counts 23), the same text twice, a reply to a post it
// does not know. It fails on command: 5xx, 429 with X's rate-limit
// headers, 401, 403, or a request held until the client gives up.
//
// A test gives its code the stand-in's URL in place of https://api.x.com,
// or, to test code that keeps X's URL, an HTTP client with
// Server.Transport, which carries requests for api.x.com to the stand-in.
package xapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// Credentials are the one app and user the stand-in knows: the app's
// consumer key and secret (X's "API key and secret") and the user's access
// token and secret, as X's developer portal shows them.
type Credentials struct {
	ConsumerKey, ConsumerSecret string
	Token, TokenSecret          string
}

// Post is one post the stand-in accepted, as the client sent it.
type Post struct {
	// ID is the post's ID as the answer gave it: 19 digits, growing
	// with time as X's do.
	ID   string
	Text string
	// ReplyTo is the ID of the post this one answers; empty for a post
	// that answers none.
	ReplyTo  string
	Received time.Time
	// Raw is the request body as it arrived, for tests that check the
	// encoding byte for byte.
	Raw string
	// Header holds the request's headers, Authorization included.
	Header http.Header
}

// Attempt is one request that reached the stand-in, accepted or not, so
// that a test can count retries and see what was refused and why.
type Attempt struct {
	Time   time.Time
	Method string
	Path   string
	// Raw is the request body as it arrived.
	Raw string
	// Status is what the stand-in answered; 0 when the client gave up on
	// a stalled request first.
	Status int
	// Why says, when the stand-in refused the request, what was wrong in
	// the stand-in's own words, such as "signature does not match" or
	// "nonce reused": X's answer says only "Unauthorized", a test may
	// want to know more.
	Why string
}

// Server is the stand-in. It listens on 127.0.0.1 until Close and keeps
// every post it accepts, in arrival order, for as long as it lives. Its
// methods are safe for concurrent use.
type Server struct {
	*standin.Server // URL, Connections, Stalled, Release
	// FailNext, Fail, FailIf and Recover set how requests fail.
	standin.Faults[Fault, Request]

	// Credentials are the app and user the stand-in accepts.
	Credentials Credentials

	mu       sync.Mutex
	posts    []Post
	attempts standin.Kept[Attempt]
	nonces   map[string]time.Time // nonce → when it may be forgotten
	lastID   int64
}

// New starts a stand-in that accepts requests signed with c. Each of the
// four must be non-empty printable ASCII without spaces, as X issues them.
// The caller must Close it.
func New(c Credentials) (*Server, error) {
	for name, v := range map[string]string{
		"consumer key": c.ConsumerKey, "consumer secret": c.ConsumerSecret,
		"access token": c.Token, "access token secret": c.TokenSecret,
	} {
		if !standin.Credential(v) {
			return nil, fmt.Errorf("xapi: %s must be non-empty printable ASCII without spaces, as X issues it", name)
		}
	}
	s := &Server{
		Credentials: c,
		nonces:      map[string]time.Time{},
	}
	s.Server = standin.Start("xapi", http.HandlerFunc(s.serve))
	return s, nil
}

// Start is New for a test: it fails the test if the stand-in cannot start
// and closes it when the test ends.
func Start(t standin.TB, c Credentials) *Server {
	t.Helper()
	s, err := New(c)
	return standin.ForTest(t, s, err)
}

// Posts returns a copy of every post accepted so far, in the order they
// were accepted.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return clonePosts(s.posts)
}

// Attempts returns a copy of every request received so far that has been
// answered or given up on, in that order.
func (s *Server) Attempts() []Attempt {
	return s.attempts.All()
}

// WaitFor returns the posts as soon as at least n have been accepted. If
// ctx ends or the stand-in closes first, it returns what did arrive and an
// error that lists it, so that a failing test says what it got.
func (s *Server) WaitFor(ctx context.Context, n int) ([]Post, error) {
	return standin.WaitForN(ctx, s.Server, n, "post", s.Posts, func(p Post) string {
		if p.ReplyTo != "" {
			return fmt.Sprintf("%s %q in reply to %s", p.ID, p.Text, p.ReplyTo)
		}
		return fmt.Sprintf("%s %q", p.ID, p.Text)
	})
}

// ErrNoSuchPost is what Lookup returns for an ID the stand-in never gave
// out.
var ErrNoSuchPost = errors.New("xapi: no such post")

// Lookup returns the accepted post with id, so that a test can follow a
// thread of replies.
func (s *Server) Lookup(id string) (Post, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.posts {
		if p.ID == id {
			p.Header = p.Header.Clone()
			return p, nil
		}
	}
	return Post{}, fmt.Errorf("%w: %s", ErrNoSuchPost, id)
}

func (s *Server) store(p Post) {
	s.mu.Lock()
	s.posts = append(s.posts, p)
	s.mu.Unlock()
	s.Arrived()
}

func (s *Server) record(a Attempt) { s.attempts.Add(a) }

// twitterEpoch is where X's IDs count milliseconds from: 2010-11-04.
const twitterEpoch = 1288834974657

// newID returns an ID in X's form, a snowflake: milliseconds since
// twitterEpoch shifted past 22 bits of machine and sequence, which makes
// 19 digits today and keeps IDs growing with time. The caller holds s.mu.
func (s *Server) newID(now time.Time) string {
	id := (now.UnixMilli() - twitterEpoch) << 22
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id
	return fmt.Sprint(id)
}

func clonePosts(posts []Post) []Post {
	return standin.Copies(posts, func(p Post) Post { p.Header = p.Header.Clone(); return p })
}
