// Package tcptest runs a TCP server on loopback whose every connection a
// test serves by hand: one that greets and then says nothing, one that
// hears a command and hangs. Connections still open when the test ends
// are closed, and the server with them.
package tcptest

import (
	"net"
	"sync"
	"testing"
)

// Serve serves each connection with serve, in a goroutine of its own, until
// the test ends, and returns the server's address. serve need not close
// the connection.
func Serve(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}
