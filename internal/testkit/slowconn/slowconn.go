// Package slowconn plays the clients that servers facing a network must
// survive: one that sends a request a byte at a time (slowloris), and a
// check that the server closed a connection in time.
package slowconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

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
// does to a client that sends its headers a byte at a time.
func TrickleCut(t testing.TB, c net.Conn, request string) {
	t.Helper()
	sent := Trickle(c, request)
	took := ClosedByServer(t, c, 10*time.Second)
	if n := <-sent; n >= len(request) {
		t.Errorf("the whole request went through, byte by byte, in %s", took)
	}
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
