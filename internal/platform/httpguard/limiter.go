package httpguard

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"
)

// Limiter is a token bucket per client: Rate requests a second on average,
// Burst at once. It remembers at most a bounded number of clients, so that
// a flood from many addresses costs memory in proportion to the bound, not
// to the flood.
type Limiter struct {
	rate    float64 // tokens a second
	burst   float64
	max     int // clients remembered
	now     func() time.Time
	proxies Proxies

	mu       sync.Mutex
	buckets  map[string]*bucket
	overflow bucket // shared by the clients that find the table full
	swept    time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewLimiter allows each client rate requests a second, burst at once, and
// remembers at most maxClients clients; requests are told apart by their
// client address behind proxies. now is the clock (time.Now when nil).
func NewLimiter(rate float64, burst, maxClients int, proxies Proxies, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		rate: rate, burst: float64(burst), max: max(maxClients, 1), now: now, proxies: proxies,
		buckets: map[string]*bucket{}, overflow: bucket{tokens: float64(burst)},
	}
}

// Allow takes a token for the client key; when there is none it says how
// long until there is one.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		if len(l.buckets) >= l.max {
			// Every client remembered is still limited: a newcomer shares
			// one bucket with the others that came too late, rather than
			// push out a client whose limit is in force (which would give
			// that one a full bucket again).
			b = &l.overflow
		} else {
			b = &bucket{tokens: l.burst, at: now}
			l.buckets[key] = b
		}
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / l.rate * float64(time.Second)))
	return false, wait
}

func (l *Limiter) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
	}
	b.at = now
}

// sweep forgets the clients whose bucket is full again: they are as if
// never seen. At most once a second, so that a full table of clients all
// limited does not cost a scan per request.
func (l *Limiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// Len is how many clients the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Wrap limits next per client address, answering 429 with Retry-After
// (whole seconds, at least one) beyond the limit.
func (l *Limiter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.Allow(Key(l.proxies.Client(r))); !ok {
			TooMany(w, wait, "too many requests; try again later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TooMany answers 429 with Retry-After.
func TooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", retrySeconds(wait))
	http.Error(w, msg, http.StatusTooManyRequests)
}

func retrySeconds(d time.Duration) string {
	return fmt.Sprint(max(1, int(math.Ceil(d.Seconds()))))
}
