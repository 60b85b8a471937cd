package main

import (
	"io"
	"sync"

	"github.com/tocsin-alarm/tocsin/internal/demo"
)

// newLoopbackServer is a server of the demo's kind for the tests' fleets:
// one that can be switched off and on again at the same address.
func newLoopbackServer(name, banner string) (*demo.Server, error) {
	return demo.NewServer(name, banner)
}

// lockedWriter writes one call at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
