package demo

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestOffWhileConnectionsArrive: a server switched off while connections
// keep arriving goes off, however the two meet (Off once waited for an
// Accept that waited for Off's lock).
func TestOffWhileConnectionsArrive(t *testing.T) {
	s, err := NewServer("web1", "")
	if err != nil {
		t.Fatal(err)
	}
	s.Unreachable("127.0.0.9")
	addr := s.Addr() // the same across off and on
	ctx, cancel := context.WithCancel(context.Background())
	var dialers sync.WaitGroup
	defer func() { cancel(); dialers.Wait() }()
	for range 4 {
		dialers.Go(func() {
			var d net.Dialer
			for ctx.Err() == nil {
				if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
					c.Close()
				}
			}
		})
	}
	for i := range 200 {
		off := make(chan struct{})
		go func() { s.Off(); close(off) }()
		wait.Within(t, 10*time.Second, "the server off", func() bool {
			select {
			case <-off:
				return true
			default:
				return false
			}
		})
		if err := s.On(); err != nil {
			// Another program's connection may have taken the port
			// meanwhile: the rounds so far have switched it off.
			t.Logf("stopped after %d rounds: on again: %v", i, err)
			return
		}
	}
	s.Off()
}
