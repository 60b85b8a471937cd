package httpguard

import (
	"net/http"
	"sync"
	"time"
)

// Streams counts the long-lived responses (Server-Sent Events) open at
// once, in all and per client. Each one holds a connection, a file
// descriptor and buffers for as long as the client likes; without a bound
// one address could hold them all, and the descriptors with them that the
// rest of the process needs.
type Streams struct {
	max, perClient int

	mu    sync.Mutex
	total int
	by    map[string]int // only clients with a stream open: never more than max
}

// NewStreams allows max streams at once, perClient of them per client.
func NewStreams(max, perClient int) *Streams {
	return &Streams{max: max, perClient: perClient, by: map[string]int{}}
}

// Open takes a stream for client; ok is false when that would pass a
// bound. Call done once the stream ends.
func (s *Streams) Open(client string) (done func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.total >= s.max || s.by[client] >= s.perClient {
		return nil, false
	}
	s.total++
	s.by[client]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			if s.by[client]--; s.by[client] <= 0 {
				delete(s.by, client)
			}
		})
	}, true
}

// Count is how many streams are open.
func (s *Streams) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Busy answers 503 with Retry-After: the server is full for now, which a
// client may try again later, unlike a refusal.
func Busy(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", retrySeconds(wait))
	http.Error(w, msg, http.StatusServiceUnavailable)
}
