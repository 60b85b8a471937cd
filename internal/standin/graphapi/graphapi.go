// Package graphapi runs a stand-in for the Graph API's page feed on
// loopback, so that code which posts to a Facebook page can be tested
// against the API as it answers on the wire: POST /v<N>.0/{page-id}/feed
// with message and link, POST /v<N>.0/{post-id}/comments with message, the
// page access token in the form, the query or an Authorization header,
// Graph's JSON for a created object and for an error ({"error": {"message",
// "type", "code", "fbtrace_id"}}), and failures on command: 500 and 503,
// rate limits (codes 4, 17, 32, 613) with Graph's usage headers, an
// invalid token (190), any other code, or a request held until the client
// gives up.
//
// A test gives its code the stand-in's URL in place of
// https://graph.facebook.com, or, to test code that keeps Graph's URL, an
// HTTP client with Server.Transport.
package graphapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// Post is one post the stand-in accepted on the page's feed, as the client
// sent it.
type Post struct {
	// ID is the post's ID as the answer gave it: "<page-id>_<post>".
	ID      string
	Message string
	Link    string // empty when none was sent
	Arrival
}

// Comment is one comment the stand-in accepted on a post, as the client
// sent it.
type Comment struct {
	// ID is the comment's ID as the answer gave it: "<post>_<comment>",
	// where <post> is the part of PostID after the page's.
	ID string
	// PostID is the ID of the post commented on, "<page-id>_<post>".
	PostID  string
	Message string
	Arrival
}

// Arrival is how an accepted post or comment reached the stand-in.
type Arrival struct {
	// Version is the Graph API version the request named, such as
	// "v21.0".
	Version string
	// TokenIn says where the access token travelled: "form", "query" or
	// "header", so that a test can check it never went in the URL.
	TokenIn  string
	Received time.Time
	// RequestURI is the request's path and query as they arrived.
	RequestURI string
	// Raw is the request body as it arrived, for tests that check the
	// encoding byte for byte.
	Raw    string
	Header http.Header
}

// Attempt is one request that reached the stand-in, accepted or not, so
// that a test can count retries and see what was refused and why.
type Attempt struct {
	Time       time.Time
	Method     string
	RequestURI string
	Raw        string
	// Status is what the stand-in answered; 0 when the client gave up on
	// a stalled request first.
	Status int
	// Code is the Graph error code of an error answer, 0 otherwise.
	Code int
	// Why says, when the stand-in refused the request, what was wrong in
	// the stand-in's own words.
	Why string
}

// Server is the stand-in. It listens on 127.0.0.1 until Close and keeps
// every post and comment it accepts, in arrival order, for as long as it
// lives. Its methods are safe for concurrent use.
type Server struct {
	*standin.Server // URL, Connections, Stalled, Release
	// FailNext, Fail, FailIf and Recover set how requests fail.
	standin.Faults[Fault, Request]

	// PageID and Token are the one page the stand-in knows and the page
	// access token that may post to it.
	PageID, Token string

	mu       sync.Mutex
	posts    []Post
	comments []Comment
	attempts standin.Kept[Attempt]
	lastID   uint64
}

// New starts a stand-in for the page pageID, which must be digits as
// Graph's page IDs are, accepting token, which must be non-empty
// printable ASCII without spaces. The caller must Close it.
func New(pageID, token string) (*Server, error) {
	if !digits(pageID) {
		return nil, errors.New("graphapi: page ID must be digits, as Graph's are")
	}
	if !standin.Credential(token) {
		return nil, errors.New("graphapi: token must be non-empty printable ASCII without spaces")
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // never fails, per crypto/rand
	s := &Server{
		PageID: pageID,
		Token:  token,
		// IDs of 16 digits from a random start, as Graph's are.
		lastID: 1_000_000_000_000_000 + binary.BigEndian.Uint64(seed[:])%8_000_000_000_000_000,
	}
	s.Server = standin.Start("graphapi", http.HandlerFunc(s.serve))
	return s, nil
}

// Start is New for a test: it fails the test if the stand-in cannot start
// and closes it when the test ends.
func Start(t standin.TB, pageID, token string) *Server {
	t.Helper()
	s, err := New(pageID, token)
	return standin.ForTest(t, s, err)
}

// Posts returns a copy of every post accepted so far, in the order they
// were accepted.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return standin.Copies(s.posts, func(p Post) Post { p.Header = p.Header.Clone(); return p })
}

// Comments returns a copy of every comment accepted so far, in the order
// they were accepted.
func (s *Server) Comments() []Comment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return standin.Copies(s.comments, func(c Comment) Comment { c.Header = c.Header.Clone(); return c })
}

// Attempts returns a copy of every request received so far that has been
// answered or given up on, in that order.
func (s *Server) Attempts() []Attempt {
	return s.attempts.All()
}

// WaitFor returns the posts and comments as soon as at least posts posts
// and comments comments have been accepted. If ctx ends or the stand-in
// closes first, it returns what did arrive and an error that lists it, so
// that a failing test says what it got.
func (s *Server) WaitFor(ctx context.Context, posts, comments int) ([]Post, []Comment, error) {
	var ps []Post
	var cs []Comment
	err := s.Wait(ctx, fmt.Sprintf("%d posts and %d comments", posts, comments), func() (bool, string) {
		ps, cs = s.Posts(), s.Comments()
		return len(ps) >= posts && len(cs) >= comments, describe(ps, cs)
	})
	return ps, cs, err
}

func (s *Server) record(a Attempt) { s.attempts.Add(a) }

// nextID returns a new object ID, growing like Graph's. The caller holds
// s.mu.
func (s *Server) nextID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	s.lastID += 1 + uint64(binary.BigEndian.Uint16(b[:]))%1000
	return fmt.Sprint(s.lastID)
}

func describe(posts []Post, comments []Comment) string {
	if len(posts)+len(comments) == 0 {
		return "nothing arrived"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d post(s) and %d comment(s) arrived:", len(posts), len(comments))
	for _, p := range posts {
		fmt.Fprintf(&b, " post %s %q;", p.ID, p.Message)
	}
	for _, c := range comments {
		fmt.Fprintf(&b, " comment %s on %s %q;", c.ID, c.PostID, c.Message)
	}
	return strings.TrimSuffix(b.String(), ";")
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
