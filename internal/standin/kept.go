package standin

import (
	"fmt"
	"strings"
	"sync"
)

// Kept is a list a stand-in keeps in the order things happened: the
// requests it answered, the messages it accepted. A test reads it through
// All, which hands out copies made by Deep (nil: plain copies). Its zero
// value is ready; it is safe for concurrent use.
type Kept[T any] struct {
	Deep func(T) T

	mu    sync.Mutex
	items []T
}

// Add appends v.
func (k *Kept[T]) Add(v T) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.items = append(k.items, v)
}

// All returns a copy of what was added, in order.
func (k *Kept[T]) All() []T {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.Deep == nil {
		return append([]T(nil), k.items...)
	}
	return Copies(k.items, k.Deep)
}

// Copies returns a copy of items for a test to keep, each passed through
// deep, which copies what it would otherwise share with the stand-in's
// own (headers, forms): what the stand-in stores later must not change
// what a test already holds, nor the test what the stand-in keeps.
func Copies[T any](items []T, deep func(T) T) []T {
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = deep(it)
	}
	return out
}

// Arrived says what a stand-in took, for the error of a test that waited
// for more: "no <noun> arrived", or how many did, each numbered and said
// by one.
func Arrived[T any](items []T, noun string, one func(T) string) string {
	if len(items) == 0 {
		return "no " + noun + " arrived"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s(s) arrived:", len(items), noun)
	for i, it := range items {
		fmt.Fprintf(&b, " [%d] %s;", i, one(it))
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Credential reports whether s is what providers issue as a credential:
// non-empty printable ASCII without spaces.
func Credential(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
