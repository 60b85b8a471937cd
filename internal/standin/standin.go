// Package standin is what the loopback stand-ins for third-party APIs
// (twilioapi, xapi, graphapi, smtpserver) have in common: the HTTP server on
// 127.0.0.1 with its count of connections, requests held on command until
// released, faults a test queues up, and a transport that carries requests
// for the provider's hosts to the stand-in and refuses every other address
// but loopback, so that a test never reaches the real provider; and the
// self-signed certificate a server on loopback serves.
package standin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
)

// TB is the part of testing.TB the stand-ins' helpers need. A test's *T
// is one; naming it here rather than importing testing keeps the testing
// package out of the binary, whose demo runs the stand-ins too.
type TB interface {
	Helper()
	Cleanup(func())
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Server is the HTTP side of a stand-in. A stand-in embeds it, so that its
// Connections, Stalled and Release are the stand-in's. Its methods are
// safe for concurrent use.
type Server struct {
	// URL is where the stand-in listens, "http://127.0.0.1:port", with no
	// trailing slash: the value for an adapter's API URL setting.
	URL string

	name   string // the stand-in's package, for errors
	srv    *http.Server
	done   chan struct{}   // closed when the server stops serving
	client *http.Transport // what Transport sends with; its idle connections go with Close
	// serving is held, shared, by each request being handled: Close
	// takes it to wait for them all.
	serving sync.RWMutex
	closed  chan struct{}
	once    sync.Once

	mu      sync.Mutex
	conns   int
	active  map[net.Conn]bool // connections with a request under way
	stalled int
	release chan struct{} // closed and replaced by Release
	arrived chan struct{} // closed and replaced by Arrived
}

// Start serves h on loopback. name is the stand-in's package, such as
// "twilioapi", which its errors begin with. The server has the bounds of
// every server Tocsin runs (httpguard): `tocsin demo` runs the stand-ins
// in the binary, where another user of the box can reach them.
func Start(name string, h http.Handler) *Server {
	return start(name, h, httpguard.DefaultLimits())
}

func start(name string, h http.Handler, limits httpguard.Limits) *Server {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("%s: listen on loopback: %v", name, err)) // as httptest does: nothing to serve without it
	}
	s := &Server{name: name, closed: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{}), arrived: make(chan struct{})}
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serving.RLock()
		defer s.serving.RUnlock()
		select {
		case <-s.closed:
			http.Error(w, "the stand-in is closing", http.StatusServiceUnavailable)
		default:
			h.ServeHTTP(w, r)
		}
	})
	s.active = map[net.Conn]bool{}
	s.srv = httpguard.Server(serve, limits, nil)
	s.srv.ConnState = func(c net.Conn, state http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch state {
		case http.StateNew:
			s.conns++
		case http.StateActive:
			s.active[c] = true
		default:
			delete(s.active, c)
		}
	}
	s.client = http.DefaultTransport.(*http.Transport).Clone()
	s.client.Proxy = nil // loopback, never through a proxy
	go func() { defer close(s.done); s.srv.Serve(l) }()
	s.URL = "http://" + l.Addr().String()
	return s
}

// Close answers stalled requests (see Hold), stops the server and waits
// for requests in progress to finish. What was accepted stays readable.
// Calling Close again does nothing.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed) // held requests answer and return
		s.srv.SetKeepAlivesEnabled(false)
		// Every request in progress has been handled once the lock is
		// ours; then wait, a second at most, for the answers to be written.
		s.serving.Lock()
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			s.mu.Lock()
			n := len(s.active)
			s.mu.Unlock()
			if n == 0 {
				break
			}
		}
		s.serving.Unlock()
		s.srv.Close()
		<-s.done
		s.client.CloseIdleConnections()
	})
}

// Closed is closed when Close is called.
func (s *Server) Closed() <-chan struct{} { return s.closed }

// Connections reports how many connections clients have opened so far,
// so that a test can check that its client reuses them: a client that
// leaves answers unread opens one per request, and against the real
// provider pays a TLS handshake for each.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Stalled reports how many requests are being held by a Stall fault now,
// so that a test can wait until its client is stuck before going on.
func (s *Server) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

// Release lets every request held by a Stall fault go on: it is then
// checked and, if valid, accepted as if it had just arrived. Requests that
// stall later are held again.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

// Arrived wakes every Wait, to look again at what the stand-in has
// accepted. The stand-in calls it after storing what a request brought.
func (s *Server) Arrived() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// Wait returns nil as soon as check reports true, and asks it again after
// each Arrived. If ctx ends or the stand-in closes first, it fails with an
// error that names what was awaited, such as "2 posts", and what check
// said of what did arrive, so that a failing test says what it got.
func (s *Server) Wait(ctx context.Context, what string, check func() (done bool, got string)) error {
	for {
		// Taken before check, so that an arrival after check wakes us.
		s.mu.Lock()
		arrived := s.arrived
		s.mu.Unlock()
		done, got := check()
		if done {
			return nil
		}
		select {
		case <-arrived:
		case <-s.closed:
			return fmt.Errorf("%s: closed while waiting for %s; %s", s.name, what, got)
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s; %s: %w", s.name, what, got, context.Cause(ctx))
		}
	}
}

// WaitForN returns what all lists as soon as it holds at least n. If ctx
// ends or s closes first, it returns what did arrive and an error that
// lists it, each as one says it, so that a failing test says what it got.
// noun names one of them, as "message".
func WaitForN[T any](ctx context.Context, s *Server, n int, noun string, all func() []T, one func(T) string) ([]T, error) {
	var got []T
	err := s.Wait(ctx, fmt.Sprintf("%d %ss", n, noun), func() (bool, string) {
		got = all()
		return len(got) >= n, Arrived(got, noun, one)
	})
	return got, err
}

// WriteJSON answers with status and v as JSON of contentType, with <, >
// and & left as they are and no newline at the end, as the providers
// write it.
func WriteJSON(w http.ResponseWriter, status int, contentType string, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// ForTest is a stand-in's New for a test: it fails t if the stand-in
// could not start (err), and closes it when t ends.
func ForTest[S interface{ Close() }](t TB, s S, err error) S {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Held holds a request that a Stall fault caught (see Hold) and reports
// whether to carry on with it, as if it had just arrived: after Release.
// Otherwise it has dealt with it: gone is called when the client gave up,
// closing when the stand-in is closing, to answer 503.
func (s *Server) Held(r *http.Request, gone, closing func()) bool {
	switch s.Hold(r) {
	case ClientGone:
		gone()
		return false
	case ServerClosed:
		closing()
		return false
	}
	return true
}

// HoldEnd is how a held request ended.
type HoldEnd int

// How a held request ends.
const (
	Released     HoldEnd = iota // the test called Release: carry on
	ClientGone                  // the client gave up: answer nothing
	ServerClosed                // the stand-in is closing: answer 503
)

// Hold keeps a stalled request until the client gives up, the test calls
// Release, or the stand-in closes.
func (s *Server) Hold(r *http.Request) HoldEnd {
	s.mu.Lock()
	s.stalled++
	release := s.release
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.stalled--
		s.mu.Unlock()
	}()
	select {
	case <-release:
		return Released
	case <-r.Context().Done():
		return ClientGone
	case <-s.closed:
		return ServerClosed
	}
}

// Route says which requests a stand-in's transport carries to it.
type Route struct {
	// API reports whether host is one of the provider's API hosts.
	API func(host string) bool
	// Rewrite, if set, readies the copy of a request for the provider
	// before it is sent to the stand-in, which has already set its scheme
	// and host; without it the Host header becomes the stand-in's too.
	Rewrite func(out, in *http.Request)
}

// Transport returns an http.RoundTripper that sends requests for the
// route's API hosts to the stand-in, changing only where they go. Requests
// for loopback addresses go out unchanged. Any other request fails.
func (s *Server) Transport(route Route) http.RoundTripper {
	target, _ := url.Parse(s.URL) // made by Start: always parses
	return &rewriter{name: s.name, route: route, target: target, base: s.client}
}

// Client returns an http.Client with Transport(route), a 10-second timeout
// and redirects not followed, as the providers' own clients have it.
func (s *Server) Client(route Route) *http.Client {
	return &http.Client{
		Transport:     s.Transport(route),
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type rewriter struct {
	name   string
	route  Route
	target *url.URL
	base   http.RoundTripper
}

func (t *rewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Hostname()
	switch {
	case t.route.API(host):
		out := req.Clone(req.Context()) // a RoundTripper must not change req
		out.URL.Scheme, out.URL.Host, out.Host = t.target.Scheme, t.target.Host, ""
		if t.route.Rewrite != nil {
			t.route.Rewrite(out, req)
		}
		return t.base.RoundTrip(out)
	case Loopback(host):
		return t.base.RoundTrip(req)
	default:
		return nil, Refuse(t.name, req)
	}
}

// Refuse closes the body of a request that must not leave this machine,
// as a RoundTripper closes it even on error, and says why it was refused.
func Refuse(name string, req *http.Request) error {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return fmt.Errorf("%s: refusing to send to %s: tests reach only the stand-in and loopback", name, req.URL.Host)
}

// Loopback reports whether host is localhost or a loopback address.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Faults is the queue of faults a test sets on a stand-in, of the
// stand-in's Fault type F, with a rule that sees each request as R. A
// stand-in embeds it, so that FailNext, Fail, FailIf and Recover are the
// stand-in's. Its methods are safe for concurrent use.
type Faults[F comparable, R any] struct {
	mu     sync.Mutex
	next   []F
	rule   func(R) *F
	always *F
	n      int // requests counted
}

// FailNext fails the next n requests with f. Faults set by several calls
// queue up in the order of the calls, so that a test can script a
// sequence such as 503, a rate limit, then success.
func (q *Faults[F, R]) FailNext(n int, f F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for range n {
		q.next = append(q.next, f)
	}
}

// Fail fails every request with f until Recover, or until Fail is called
// again; Fail with the zero fault is Recover for this mode only.
func (q *Faults[F, R]) Fail(f F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero F
	if f == zero {
		q.always = nil
		return
	}
	q.always = &f
}

// FailIf asks rule about every request: a non-nil fault fails that
// request, nil lets it through, so that a test can fail one recipient or
// one attempt among several. FailIf(nil) removes the rule.
func (q *Faults[F, R]) FailIf(rule func(R) *F) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rule = rule
}

// Recover forgets every fault set by FailNext, Fail and FailIf. Requests
// already stalled stay stalled until Release.
func (q *Faults[F, R]) Recover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next, q.rule, q.always = nil, nil, nil
}

// TakeFault counts a request and picks its fault, nil for none: first the
// FailNext queue, then the FailIf rule, then Fail. request makes what the
// rule sees from the request's number, counted from 1. The stand-in's
// handler calls it.
func (q *Faults[F, R]) TakeFault(request func(n int) R) *F {
	q.mu.Lock()
	q.n++
	n := q.n
	if len(q.next) > 0 {
		f := q.next[0]
		q.next = q.next[1:]
		q.mu.Unlock()
		return &f
	}
	rule, always := q.rule, q.always
	q.mu.Unlock()

	// The rule runs unlocked: it may call back into the stand-in.
	if rule != nil {
		if f := rule(request(n)); f != nil {
			return f
		}
	}
	if always != nil {
		f := *always
		return &f
	}
	return nil
}

// Concurrently calls send n times at once (i from 0 to n-1), as the
// callers of a provider's client do during a storm, and returns the
// distinct ids of the calls that succeeded and the number that failed. A
// failure that retryable does not accept is an error of the test: a
// stand-in told to fail now and then fails in ways worth a retry.
func Concurrently(t TB, n int, send func(i int) (string, error), retryable func(error) bool) (ids map[string]bool, failed int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids = map[string]bool{}
	for i := range n {
		wg.Go(func() {
			id, err := send(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !retryable(err) {
					t.Errorf("call %d: %v", i, err)
				}
				failed++
				return
			}
			ids[id] = true
		})
	}
	wg.Wait()
	return ids, failed
}
