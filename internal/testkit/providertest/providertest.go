// Package providertest is the one contract every adapter to an outside
// provider passes, against the stand-in for that provider: an SMTP server,
// Twilio, X, Facebook. What the notifier and the escalator rely on is the
// same whoever carries the message — accepted means accepted once, a
// refusal is permanent, an outage and a rate limit are retried no sooner
// than the provider asked, a provider that never answers costs at most the
// timeout, and no error shows a secret or an address — so it is tested
// once, here, and each adapter's own tests keep only what is its own.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// Rig is one adapter wired to a fresh stand-in, for one test.
type Rig struct {
	// Send makes one request through the adapter, for a message named by
	// key (its idempotency key: a Message-ID, or words of the text), and
	// returns the provider's id for it, if it gives one.
	Send func(ctx context.Context, key string) (string, error)
	// Refuse has the stand-in refuse what follows for good (a 4xx
	// answer, SMTP's 5xx); Unavailable has it fail what follows in a way
	// worth a retry (a 5xx answer, SMTP's 4xx); Recover has it accept
	// again.
	Refuse, Unavailable, Recover func()
	// RateLimit has the stand-in answer what follows with "too many
	// requests, come back after d", and returns the wait as the provider
	// words it (Graph counts in minutes); nil for a provider that has no
	// such answer.
	RateLimit func(d time.Duration) time.Duration
	// Accepted is the keys of the messages the stand-in took, in order.
	Accepted func() []string
	// Connections is how many connections the stand-in was opened;
	// nil for an adapter that opens one per message by design (SMTP).
	Connections func() int
	// Secrets are what no error may show: credentials, the recipient.
	Secrets []string
}

// Options are how a Factory wires the adapter.
type Options struct {
	// Timeout bounds each request of the adapter.
	Timeout time.Duration
	// Addr, when set, is the host:port the adapter must send to instead
	// of the stand-in: one that never answers, or nobody at all.
	Addr string
}

// APIURL is the API URL an HTTP adapter is to use: standIn's, or the
// address Addr names instead when it is set.
func (o Options) APIURL(standIn string) string {
	if o.Addr != "" {
		return "http://" + o.Addr
	}
	return standIn
}

// Keys is the key of each of items, in order: what a Rig's or a
// StandIn's Accepted returns of what the stand-in took.
func Keys[T any](items []T, key func(T) string) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, key(it))
	}
	return keys
}

// Factory wires an adapter to a fresh stand-in for t.
type Factory func(t *testing.T, o Options) Rig

// Run tests the contract with rigs made by f.
func Run(t *testing.T, f Factory) {
	ctx := Context
	live := Options{Timeout: 5 * time.Second}

	t.Run("accepted", func(t *testing.T) {
		r := f(t, live)
		if _, err := r.Send(ctx(t), "accepted-1"); err != nil {
			t.Fatal(err)
		}
		if got := r.Accepted(); len(got) != 1 || !strings.Contains(got[0], "accepted-1") {
			t.Errorf("the stand-in took %q, want the one message", got)
		}
	})

	t.Run("refused for good", func(t *testing.T) {
		r := f(t, live)
		r.Refuse()
		_, err := r.Send(ctx(t), "refused-1")
		if !bus.IsPermanent(err) || bus.Retryable(err) {
			t.Fatalf("got %v, want a permanent error", err)
		}
		if p := ProviderError(t, err); p.Status < 400 || p.Retry {
			t.Errorf("status %d, retry %v; want the refusal's status and no retry", p.Status, p.Retry)
		}
		NoSecrets(t, err, r.Secrets...)
		if got := r.Accepted(); len(got) != 0 {
			t.Errorf("the stand-in took %q after refusing", got)
		}
	})

	t.Run("unavailable, then accepted once", func(t *testing.T) {
		r := f(t, live)
		r.Unavailable()
		_, err := r.Send(ctx(t), "retried-1")
		if !bus.Retryable(err) || bus.IsPermanent(err) {
			t.Fatalf("got %v, want a retryable error", err)
		}
		if p := ProviderError(t, err); p.Status < 400 || !p.Retry {
			t.Errorf("status %d, retry %v; want the failure's status and a retry", p.Status, p.Retry)
		}
		NoSecrets(t, err, r.Secrets...)
		r.Recover()
		if _, err := r.Send(ctx(t), "retried-1"); err != nil {
			t.Fatalf("after recovery: %v", err)
		}
		// The failed attempt left nothing behind: the message is there
		// once, however often it was tried.
		if got := r.Accepted(); len(got) != 1 {
			t.Errorf("the stand-in took %q, want the message once", got)
		}
	})

	t.Run("rate limited, Retry-After honoured", func(t *testing.T) {
		r := f(t, live)
		if r.RateLimit == nil {
			t.Skip("the provider has no rate-limit answer")
		}
		want := r.RateLimit(7 * time.Second)
		_, err := r.Send(ctx(t), "limited-1")
		if !bus.Retryable(err) {
			t.Fatalf("got %v, want a retryable error", err)
		}
		if p := ProviderError(t, err); p.Status < 400 {
			t.Errorf("status %d, want the rate limit's", p.Status)
		}
		// A reset time is in whole seconds: the provider's "7s" may
		// arrive as 6.
		if got := bus.RetryAfter(err); got < want-2*time.Second || got > want {
			t.Errorf("RetryAfter %v, want about %v", got, want)
		}
		NoSecrets(t, err, r.Secrets...)
	})

	t.Run("stall ends at the timeout", func(t *testing.T) {
		silent := Silent(t)
		r := f(t, Options{Timeout: 300 * time.Millisecond, Addr: silent.Addr})
		start := time.Now()
		_, err := r.Send(ctx(t), "stalled-1")
		if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
			t.Errorf("Send returned after %v, want about 300ms", took)
		}
		if !bus.Retryable(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want a retryable deadline error", err)
		}
		if p := ProviderError(t, err); p.Status != 0 {
			t.Errorf("status %d, want none: nothing answered", p.Status)
		}
		NoSecrets(t, err, r.Secrets...)
		wait.For(t, "the stalled connection closed", func() bool { return silent.Open() == 0 })
	})

	t.Run("stall ends with the context", func(t *testing.T) {
		silent := Silent(t)
		r := f(t, Options{Timeout: time.Minute, Addr: silent.Addr})
		c, cancel := context.WithCancel(ctx(t))
		go func() {
			wait.For(t, "the request made", func() bool { return silent.Seen() > 0 })
			cancel()
		}()
		start := time.Now()
		_, err := r.Send(c, "cancelled-1")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Send returned %v after ctx was cancelled", took)
		}
		if !bus.Retryable(err) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want a retryable cancellation", err)
		}
		NoSecrets(t, err, r.Secrets...)
		wait.For(t, "the stalled connection closed", func() bool { return silent.Open() == 0 })
	})

	t.Run("nobody there is retried", func(t *testing.T) {
		r := f(t, Options{Timeout: 5 * time.Second, Addr: Closed(t)})
		_, err := r.Send(ctx(t), "unreachable-1")
		if !bus.Retryable(err) {
			t.Fatalf("got %v, want a retryable error", err)
		}
		if p := ProviderError(t, err); p.Status != 0 || !p.Retry {
			t.Errorf("status %d, retry %v; want no status and a retry", p.Status, p.Retry)
		}
		NoSecrets(t, err, r.Secrets...)
	})

	// Answers, errors included, are read to the end, so that a burst of
	// alarms does not pay for a TLS handshake per message.
	t.Run("connections reused", func(t *testing.T) {
		r := f(t, live)
		if r.Connections == nil {
			t.Skip("a connection per message")
		}
		for i, fail := range []func(){r.Unavailable, r.Refuse, r.Recover} {
			fail()
			for j := range 2 {
				_, _ = r.Send(ctx(t), fmt.Sprintf("reused-%d-%d", i, j))
			}
		}
		if n := r.Connections(); n != 1 {
			t.Errorf("6 sequential sends opened %d connections, want 1", n)
		}
	})

	t.Run("concurrent sends", func(t *testing.T) {
		r := f(t, live)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Go(func() {
				if _, err := r.Send(ctx(t), fmt.Sprintf("concurrent-%d", i)); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := r.Accepted(); len(got) != 20 {
			t.Errorf("the stand-in took %d messages, want 20", len(got))
		}
	})
}

// ProviderError is err's ProviderError, failing t when there is none:
// every adapter returns one.
func ProviderError(t *testing.T, err error) *bus.ProviderError {
	t.Helper()
	var p *bus.ProviderError
	if !errors.As(err, &p) {
		t.Fatalf("error %v (%T), want a *bus.ProviderError", err, err)
	}
	return p
}

// Failed is what a test expects of a failed call: the provider error's
// status, whether it is worth a retry and after how long, how its text
// starts (what failed) and a part of the rest.
type Failed struct {
	Status       int
	Retry        bool
	RetryAfter   time.Duration
	Prefix, Text string
}

// Classified checks that err is a *bus.ProviderError as want says, that
// bus.Retryable and bus.IsPermanent read it the same way, and returns it
// for the adapter's own checks.
func Classified(t *testing.T, err error, want Failed) *bus.ProviderError {
	t.Helper()
	e := ProviderError(t, err)
	if e.Status != want.Status || e.Retry != want.Retry || e.RetryAfter != want.RetryAfter {
		t.Errorf("got status %d retry %v after %v; want %d %v %v", e.Status, e.Retry, e.RetryAfter, want.Status, want.Retry, want.RetryAfter)
	}
	if bus.Retryable(err) != want.Retry || bus.IsPermanent(err) == want.Retry {
		t.Errorf("Retryable %v, IsPermanent %v; want retry %v", bus.Retryable(err), bus.IsPermanent(err), want.Retry)
	}
	if !strings.HasPrefix(err.Error(), want.Prefix) || !strings.Contains(err.Error(), want.Text) {
		t.Errorf("error %q: want it to start with %q and hold %q", err, want.Prefix, want.Text)
	}
	return e
}

// NoSecrets fails t if err shows one of secrets, however it is printed:
// what a log holds. (An adapter may keep a provider's own error among the
// causes, for errors.As; its text is the adapter's to clean or keep.) A
// secret of fewer than four characters is not looked for: it would be
// found by chance.
func NoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, secret := range secrets {
			if len(secret) >= 4 && strings.Contains(text, secret) {
				t.Errorf("error text %q shows %q", text, secret)
			}
		}
	}
}

// NoSecretsInCauses is NoSecrets for err and every error it wraps, for
// an adapter that cleans the provider's own error too.
func NoSecretsInCauses(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for ; err != nil; err = errors.Unwrap(err) {
		NoSecrets(t, err, secrets...)
	}
}

// SilentServer accepts connections on loopback and never says a word.
type SilentServer struct {
	Addr string
	mu   sync.Mutex
	open int // connections open that sent a request
	seen int
}

// Open is how many connections that sent something are still open: a
// request left hanging. (A connection dialled for a request cancelled
// before it was sent may rest in the client's pool, asking nothing.)
func (s *SilentServer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Seen is how many connections were accepted.
func (s *SilentServer) Seen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}

// Silent starts a SilentServer that stops when t ends.
func Silent(t *testing.T) *SilentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SilentServer{Addr: ln.Addr().String()}
	var conns sync.WaitGroup
	done, accepting := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.seen++
			s.mu.Unlock()
			conns.Go(func() {
				context.AfterFunc(closing(done), func() { _ = c.Close() })
				asked := false
				for { // until the client gives up
					n, err := c.Read(make([]byte, 64<<10))
					if n > 0 && !asked {
						asked = true
						s.mu.Lock()
						s.open++
						s.mu.Unlock()
					}
					if err != nil {
						break
					}
				}
				_ = c.Close()
				if asked {
					s.mu.Lock()
					s.open--
					s.mu.Unlock()
				}
			})
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-accepting // no connection is added to conns once Wait has begun
		close(done)
		conns.Wait()
	})
	return s
}

func closing(done <-chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-done; cancel() }()
	return ctx
}

// Closed is a loopback address where nobody listens.
func Closed(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Change is one case of an adapter's config test: what it does to a good
// config, and the parts of the error New must give (none: the config is
// valid).
type Change[C any] struct {
	Name   string
	Change func(*C)
	Want   []string
}

// Configs runs a subtest a case: mk (the adapter's New) on good as the
// case changes it, its error checked by Problems, showing none of
// secrets of the changed config.
func Configs[C, A any](t *testing.T, mk func(C) (A, error), good C, cases []Change[C], secrets func(C) []string) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.Name, func(t *testing.T) {
			cfg := good
			tt.Change(&cfg)
			_, err := mk(cfg)
			Problems(t, err, tt.Want, secrets(cfg)...)
		})
	}
}

// Problems checks what an adapter's New said of a config: nothing when
// want is empty, else every piece of want, and none of secrets.
func Problems(t *testing.T, err error, want []string, secrets ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatal("New succeeded")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q, want it to contain %q", err, w)
		}
	}
	NoSecrets(t, err, secrets...)
}

// Context is the context of one request in a test: it ends with the test,
// or after 20 seconds.
func Context(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// New is mk(cfg), failing t if it fails: an adapter made for a test.
func New[C, A any](t *testing.T, mk func(C) (A, error), cfg C) A {
	t.Helper()
	a, err := mk(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// RefusedBeforeSending checks what an adapter says of a message it will
// not send: a permanent refusal, with no provider's answer, that says
// want.
func RefusedBeforeSending(t *testing.T, err error, want string) {
	t.Helper()
	if p := ProviderError(t, err); p.Retry || p.Status != 0 || !bus.IsPermanent(err) {
		t.Errorf("got %v, want a permanent refusal before sending", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
}
