package providertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// StandIn is one HTTP stand-in (Twilio, X, Graph) for one test, driven
// through a plain client as the real API would be.
type StandIn struct {
	// Post makes one request the stand-in accepts when nothing fails,
	// for a message named by key, always through the same client, and
	// returns the answer's status; ctx ending is the client giving up.
	Post func(ctx context.Context, key string) (int, error)
	// OK is the status of an accepted request.
	OK int
	// Unavailable has the stand-in answer what follows with 503; Stall
	// has it hold what follows unanswered; StallNext holds only the next
	// request; Recover has it accept again; Release answers what it
	// holds.
	Unavailable, Stall, StallNext, Recover, Release func()
	// Stalled is how many requests it holds, Attempts how many it saw,
	// Connections how many connections it was opened.
	Stalled, Attempts, Connections func() int
	// Accepted is the keys of what it took, in order.
	Accepted func() []string
	// WaitFor is the stand-in's own, waiting for n of what Post makes:
	// it returns how many it has and, if ctx ended first, an error that
	// says what arrived.
	WaitFor func(ctx context.Context, n int) (int, error)
	// Close stops it; Client reaches it at the real API's URLs, on host
	// API, and refuses any other host.
	Close  func()
	Client *http.Client
	API    string
}

// StandInFactory starts a fresh stand-in for t, closed when t ends.
type StandInFactory func(t *testing.T) StandIn

// RunStandIn tests what every HTTP stand-in does the same way: its faults
// come and go on command, a stalled request is held until the client
// gives up, Release or Close, answers are read whole on one connection,
// a test can wait for what it took, and its client reaches nothing but
// the stand-in.
func RunStandIn(t *testing.T, f StandInFactory) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	post := func(t *testing.T, s StandIn, key string) int {
		t.Helper()
		status, err := s.Post(ctx(t), key)
		if err != nil {
			t.Fatalf("post %s: %v", key, err)
		}
		return status
	}

	t.Run("fail and recover", func(t *testing.T) {
		s := f(t)
		s.Unavailable()
		for i := range 3 {
			if got := post(t, s, fmt.Sprint("failed-", i)); got != http.StatusServiceUnavailable {
				t.Errorf("request %d: %d, want 503", i, got)
			}
		}
		s.Recover()
		if got := post(t, s, "recovered"); got != s.OK {
			t.Errorf("after Recover: %d, want %d", got, s.OK)
		}
		if got := s.Accepted(); len(got) != 1 {
			t.Errorf("took %q, want only what came after Recover", got)
		}
	})

	t.Run("stall until the client gives up", func(t *testing.T) {
		s := f(t)
		s.StallNext()
		short, cancel := context.WithTimeout(ctx(t), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if status, err := s.Post(short, "stalled"); err == nil {
			t.Fatalf("a stalled request was answered %d", status)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("gave up after %v", d)
		}
		// The handler notices the client went away shortly after.
		wait.For(t, "the stalled request let go", func() bool { return s.Attempts() == 1 && s.Stalled() == 0 })
		if got := s.Accepted(); len(got) != 0 {
			t.Errorf("took %q, which the client gave up on", got)
		}
		// The connection went with the request: the next needs another.
		if got := post(t, s, "stalled"); got != s.OK {
			t.Errorf("retry: %d", got)
		}
		if n := s.Connections(); n != 2 {
			t.Errorf("Connections = %d, want 2", n)
		}
	})

	t.Run("stall then release", func(t *testing.T) {
		s := f(t)
		s.Stall()
		var wg sync.WaitGroup
		got := make([]int, 2)
		for i := range got {
			wg.Go(func() { got[i], _ = s.Post(ctx(t), fmt.Sprint("held-", i)) })
		}
		wait.For(t, "both requests held", func() bool { return s.Stalled() == 2 })
		s.Recover()
		s.Release()
		wg.Wait()
		if got[0] != s.OK || got[1] != s.OK {
			t.Errorf("statuses %v, want %d", got, s.OK)
		}
		if n := len(s.Accepted()); n != 2 {
			t.Errorf("took %d, want 2", n)
		}
	})

	t.Run("close answers what is stalled", func(t *testing.T) {
		s := f(t)
		s.Stall()
		done := make(chan int, 1)
		go func() { status, _ := s.Post(ctx(t), "closed"); done <- status }()
		wait.For(t, "the request held", func() bool { return s.Stalled() == 1 })
		s.Close()
		s.Close()
		select {
		case got := <-done:
			if got != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("stalled request still held after Close")
		}
	})

	t.Run("answers read whole on one connection", func(t *testing.T) {
		s := f(t)
		s.Unavailable()
		for i := range 4 {
			if i == 2 {
				s.Recover()
			}
			post(t, s, fmt.Sprint("conn-", i))
		}
		if n := s.Connections(); n != 1 {
			t.Errorf("4 requests opened %d connections, want 1", n)
		}
	})

	t.Run("wait for what it took", func(t *testing.T) {
		s := f(t)
		go func() {
			for i := range 3 {
				if _, err := s.Post(ctx(t), fmt.Sprint("waited-", i)); err != nil {
					return // WaitFor below reports what did not arrive
				}
			}
		}()
		if n, err := s.WaitFor(ctx(t), 3); err != nil || n != 3 {
			t.Fatalf("WaitFor(3): %d, %v", n, err)
		}
		short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		n, err := s.WaitFor(short, 4)
		if err == nil || n != 3 || !strings.Contains(err.Error(), "3 ") || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor(4) = %d, %v; want the 3 and a deadline error that counts them", n, err)
		}
	})

	t.Run("its client reaches nothing else", func(t *testing.T) {
		s := f(t)
		for _, u := range []string{"https://example.com/", "https://" + s.API + ".evil.example/", "http://10.0.0.1/"} {
			req, _ := http.NewRequestWithContext(ctx(t), "GET", u, nil)
			resp, err := s.Client.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Errorf("%s: reached", u)
			} else if !strings.Contains(err.Error(), "refusing") {
				t.Errorf("%s: %v, want a refusal", u, err)
			}
		}
	})
}

// Answer is a stand-in's answer as a test reads it.
type Answer struct {
	Status int
	Header http.Header
	Body   string
}

// Faulted is a fault a stand-in is told to give once, and the answer it
// must give.
type Faulted[F any] struct {
	Name   string
	Fault  F
	Status int
	Body   string            // as FaultRig.Send returns it
	Header map[string]string // what the answer's headers must say
}

// FaultRig is a fresh stand-in as Faults drives it.
type FaultRig[F any] struct {
	FailNext func(F)                   // has the next request fail so
	Send     func(t *testing.T) Answer // one request the stand-in accepts
	OK       int                       // the status of an accepted request
	Kept     func() int                // how many requests it has accepted
}

// Faults tells a fresh stand-in from start to give each fault once, and
// checks that the request was answered as the case says, that nothing was
// kept, and that the next request was accepted.
func Faults[F any](t *testing.T, start func(t *testing.T) FaultRig[F], cases []Faulted[F]) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			r := start(t)
			r.FailNext(tt.Fault)
			got := r.Send(t)
			if got.Status != tt.Status || got.Body != tt.Body {
				t.Errorf("got %d %s, want %d %s", got.Status, got.Body, tt.Status, tt.Body)
			}
			for k, v := range tt.Header {
				if g := got.Header.Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if n := r.Kept(); n != 0 {
				t.Errorf("a failed request was kept: %d", n)
			}
			if got := r.Send(t); got.Status != r.OK {
				t.Errorf("after the fault: %d %s", got.Status, got.Body)
			}
		})
	}
}

// Post sends body to url as contentType with hc, after each of set has
// readied the request (set credentials, say), and returns the answer's
// status, as Do does: what a StandIn's Post does.
func Post(ctx context.Context, hc *http.Client, url, contentType, body string, set ...func(*http.Request)) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	for _, f := range set {
		f(req)
	}
	return Do(hc, req)
}

// Do sends req with hc and reads the answer to its end, as a client that
// keeps its connections does, and returns its status.
func Do(hc *http.Client, req *http.Request) (int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// BehindPath starts a reverse proxy that serves the stand-in at standIn
// below path, such as "/twilio", as an operator's egress proxy might, and
// returns the proxy's URL, without the path. It stops when t ends.
func BehindPath(t *testing.T, standIn, path string) string {
	t.Helper()
	target, err := url.Parse(standIn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(http.StripPrefix(path, httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(proxy.Close)
	return proxy.URL
}

// Find returns the one of what a stand-in took that is named id, by
// idOf, failing t when there is none.
func Find[T any](t *testing.T, took []T, idOf func(T) string, id string) T {
	t.Helper()
	for _, v := range took {
		if idOf(v) == id {
			return v
		}
	}
	t.Fatalf("no %s at the stand-in among %d", id, len(took))
	var zero T
	return zero
}

// Recorder is an http.RoundTripper that notes the URL of each request
// and sends it on through Base: to see where an adapter sends when it is
// left to its defaults. It is safe for concurrent use.
type Recorder struct {
	Base http.RoundTripper

	mu   sync.Mutex
	urls []string
}

// RoundTrip notes req's URL and sends it through Base.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	return r.Base.RoundTrip(req)
}

// URLs returns the URLs of the requests so far, in order.
func (r *Recorder) URLs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.urls...)
}
