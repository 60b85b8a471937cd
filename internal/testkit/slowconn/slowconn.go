// Package slowconn plays the clients that servers facing a network must
// survive: one that sends a request a byte at a time (slowloris), one
// that sends a header too large to read, and a check that the server
// closed a connection in time.
package slowconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Dial connects to the server at addr (host:port, or an http:// URL)
// from local, an address of the machine ("" for any), for a client that
// writes its requests by hand; the connection closes when the test ends.
// It skips the test if the machine cannot connect from local (one of the
// loopback addresses past 127.0.0.1, which not every machine answers on).
func Dial(t testing.TB, addr, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(addr, "http://"))
	if err != nil {
		if local != "" {
			t.Skipf("cannot connect from %s: %v", local, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// HugeHeader sends a GET of path on c with a header of size bytes, and
// returns the status of the answer, which it waits 10 seconds for at most:
// a server that reads the whole header before refusing it may be filled
// with as many as a client likes to send.
func HugeHeader(t testing.TB, c net.Conn, path string, size int) int {
	t.Helper()
	go fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", path, strings.Repeat("a", size))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a header of %d bytes: %v", size, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Pace is how long a slow client waits between bytes: slower than any
// timeout could miss, fast enough that a whole request of a kilobyte or
// two would take tens of seconds.
const Pace = 20 * time.Millisecond

// Trickle writes data to c a byte at a time, Pace apart, until it is all
// sent or a write fails, and then sends on the returned channel how many
// bytes went through.
func Trickle(c net.Conn, data string) <-chan int {
	sent := make(chan int, 1)
	go func() {
		// The pacing is the client's whole point: a ticker, not a wait
		// for an event.
		tick := time.NewTicker(Pace)
		defer tick.Stop()
		n := 0
		for ; n < len(data); n++ {
			if _, err := c.Write([]byte{data[n]}); err != nil {
				break
			}
			<-tick.C
		}
		sent <- n
	}()
	return sent
}

// ClosedByServer waits, at most within, for the server to close c, and
// says how long it took; it fails the test if c is still open by then.
func ClosedByServer(t testing.TB, c net.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(within))
	_, err := io.Copy(io.Discard, c) // returns at EOF: the server closed it
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s", within)
	}
	return time.Since(start)
}

// TrickleCut trickles request over c and checks that the server cuts it
// off, within 10 seconds, before all of it went through: what a server
// does to a client that sends its headers a byte at a time. It returns
// how long the server took.
func TrickleCut(t testing.TB, c net.Conn, request string) time.Duration {
	t.Helper()
	sent := Trickle(c, request)
	took := ClosedByServer(t, c, 10*time.Second)
	if n := <-sent; n >= len(request) {
		t.Errorf("the whole request went through, byte by byte, in %s", took)
	}
	return took
}

// IdleClosed sends one GET of path on c, checks the answer is status on a
// connection kept alive, then that the server closes the connection once
// it has stayed idle, and not before half of idle.
func IdleClosed(t testing.TB, c net.Conn, path string, status int, idle time.Duration) {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || resp.Close {
		t.Fatalf("the first request: %d, close %v; want %d on a connection kept alive", resp.StatusCode, resp.Close, status)
	}
	if took := ClosedByServer(t, c, 10*time.Second); took < idle/2 {
		t.Errorf("closed after %s, before the idle timeout", took)
	}
}
