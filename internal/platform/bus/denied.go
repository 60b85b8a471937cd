package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// errDenied is the cause of a request cut short because the server refused
// this user the subject it was sent to.
var errDenied = errors.New("permission denied")

// denials hands the server's permission violations, which nats.go reports
// only to the connection's error handler, to the requests waiting on them:
// a request to a subject the user may not publish to gets no answer, and
// would otherwise wait out its whole timeout.
type denials struct {
	mu      sync.Mutex
	next    int
	waiting map[int]func(msg string) bool
}

// report hands a violation to the requests waiting, and says whether one
// of them was waiting for it: the refusal is then an answer, not an error.
func (d *denials) report(msg string) (expected bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.waiting {
		if f(msg) {
			expected = true
		}
	}
	return expected
}

func (d *denials) watch(f func(msg string) bool) (stop func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting == nil {
		d.waiting = map[int]func(string) bool{}
	}
	id := d.next
	d.next++
	d.waiting[id] = f
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.waiting, id)
	}
}

// unlessDenied runs a JetStream stream request, and returns errDenied as
// soon as the server refuses this user the stream API.
func (b *Bus) unlessDenied(ctx context.Context, f func(context.Context) error) error {
	return b.unlessRefused(ctx, "$JS.API.STREAM.", f)
}

// unlessRefused runs a request, and returns errDenied as soon as the
// server refuses this user a subject that begins with prefix.
func (b *Bus) unlessRefused(ctx context.Context, prefix string, f func(context.Context) error) error {
	if b.denied == nil {
		return f(ctx)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := b.denied.watch(func(msg string) bool {
		if strings.Contains(msg, `"`+prefix) {
			cancel(errDenied)
			return true
		}
		return false
	})
	defer stop()
	err := f(ctx)
	if errors.Is(context.Cause(ctx), errDenied) {
		return errDenied
	}
	return err
}
