package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
)

// netCase is one check of a table test and the outcome it must have.
type netCase struct {
	name    string
	url     string
	timeout time.Duration
	ok      bool
	reason  string // exactly; empty when ok
}

func runNetCases(t *testing.T, cases []netCase) {
	t.Helper()
	r := New(nil)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			checkOutcome(t, r, tt)
		})
	}
}

func checkOutcome(t *testing.T, r *Runner, tt netCase) {
	t.Helper()
	timeout := tt.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	got := r.Run(context.Background(), Spec{URL: tt.url, Timeout: timeout})
	if got.OK != tt.ok || got.Reason != tt.reason {
		t.Errorf("Run(%s) = ok %v %q, want ok %v %q", tt.url, got.OK, got.Reason, tt.ok, tt.reason)
	}
	if got.Latency <= 0 || got.Latency > timeout+time.Second {
		t.Errorf("latency %v for a %v timeout", got.Latency, timeout)
	}
}

// fakeServer accepts connections on loopback and hands each to serve,
// closing it afterwards: a server that answers in a way no real one of the
// protocol would, or could only be made to with great effort.
func fakeServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				serve(c)
			}()
		}
	}()
	return l.Addr().String()
}

// says writes b as soon as a client connects, then waits for the client to
// hang up, as a server that has said its piece does.
func says(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		c.Write(b)
		io.Copy(io.Discard, c)
	}
}

// answers reads the 8-byte SSLRequest and then writes b.
func answers(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.ReadFull(c, make([]byte, 8)); err != nil {
			return
		}
		c.Write(b)
		io.Copy(io.Discard, c)
	}
}

// mysqlPacket frames payload as the first packet of a connection.
func mysqlPacket(payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), 0}, payload...)
}

func TestMySQL(t *testing.T) {
	t.Parallel()
	srv := servertest.StartMariaDB(t)
	closed, stall := closedPort(t), stalling(t)

	blocked := append([]byte{0xff, 0x69, 0x04}, "#HY000Host '192.0.2.7' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'"...)
	// MariaDB 10.11's own, byte for byte, to a client from a host no
	// account names.
	notAllowed := []byte("\xffj\x04Host '127.0.0.1' is not allowed to connect to this MariaDB server")
	truncated := []byte("\x0a10.11.19-MariaDB\x00\x07\x00\x00\x00abc")
	v9 := []byte("\x095.0\x00")

	runNetCases(t, []netCase{
		{name: "mariadb greets", url: "mysql://" + srv.Addr, ok: true},
		{name: "refused", url: "mysql://" + closed, reason: "connection refused"},
		{name: "accepts and never speaks", url: "mysql://" + stall, timeout: 300 * time.Millisecond, reason: "timeout after 300ms"},
		{name: "closes at once", url: "mysql://" + fakeServer(t, func(net.Conn) {}), reason: "the server closed the connection"},
		{name: "ssh on the port", url: "mysql://" + fakeServer(t, says([]byte("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"))),
			reason: `not a MySQL server: it sent "SSH-2.0-OpenSSH_9.2p1 Debian-2"`},
		{name: "http on the port", url: "mysql://" + fakeServer(t, says([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))),
			reason: `not a MySQL server: it sent "HTTP/1.1 400 Bad Request Content-Length"`},
		{name: "host blocked", url: "mysql://" + fakeServer(t, says(mysqlPacket(blocked))),
			reason: "MySQL server refused the connection: Host '192.0.2.7' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts' (error 1129)"},
		{name: "host not allowed", url: "mysql://" + fakeServer(t, says(mysqlPacket(notAllowed))),
			reason: "MySQL server refused the connection: Host '127.0.0.1' is not allowed to connect to this MariaDB server (error 1130)"},
		{name: "greeting cut short", url: "mysql://" + fakeServer(t, says(mysqlPacket(truncated))),
			reason: `not a MySQL server: malformed greeting "10.11.19-MariaDB abc"`},
		{name: "protocol 9", url: "mysql://" + fakeServer(t, says(mysqlPacket(v9))),
			reason: "MySQL server speaks the obsolete protocol 9, which current clients cannot use"},
	})

	// Last, as it fills the shared server: every connection slot taken by
	// clients that sit at the greeting, MariaDB itself refuses the next.
	t.Run("mariadb out of connections", func(t *testing.T) {
		for i := 0; ; i++ {
			if i > srv.MaxConnections+5 {
				t.Fatalf("still greeted after %d connections; log:\n%s", i, srv.Log())
			}
			c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			var hdr [5]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				t.Fatal(err)
			}
			if hdr[4] == 0xff {
				break // full: this one was refused too
			}
		}
		checkOutcome(t, New(nil), netCase{url: "mysql://" + srv.Addr,
			reason: "MySQL server refused the connection: Too many connections (error 1040)"})
	})
}

// pgError builds a protocol 3 ErrorResponse.
func pgError(severity, code, msg string) []byte {
	var body []byte
	for _, f := range []struct {
		typ byte
		val string
	}{{'S', severity}, {'V', severity}, {'C', code}, {'M', msg}} {
		body = append(append(append(body, f.typ), f.val...), 0)
	}
	body = append(body, 0)
	b := []byte{'E', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func TestPostgreSQL(t *testing.T) {
	t.Parallel()
	srv := servertest.StartPostgreSQL(t)
	closed, stall := closedPort(t), stalling(t)

	runNetCases(t, []netCase{
		{name: "postgresql offers TLS", url: "postgres://" + srv.Addr, ok: true},
		{name: "postgresql scheme", url: "postgresql://" + srv.Addr, ok: true},
		{name: "server without TLS", url: "postgres://" + fakeServer(t, answers([]byte("N"))), ok: true},
		{name: "refused", url: "postgres://" + closed, reason: "connection refused"},
		{name: "accepts and never speaks", url: "postgres://" + stall, timeout: 300 * time.Millisecond, reason: "timeout after 300ms"},
		{name: "hangs up", url: "postgres://" + fakeServer(t, func(c net.Conn) { io.ReadFull(c, make([]byte, 8)) }),
			reason: "the server closed the connection"},
		{name: "error response", url: "postgres://" + fakeServer(t, answers(pgError("FATAL", "53300", "sorry, too many clients already"))),
			reason: "PostgreSQL server answered with an error: sorry, too many clients already"},
		{name: "protocol 2 error", url: "postgres://" + fakeServer(t, answers([]byte("EFATAL:  unsupported frontend protocol\n\x00"))),
			reason: "PostgreSQL server answered with an error: FATAL: unsupported frontend protocol"},
		{name: "http on the port", url: "postgres://" + fakeServer(t, answers([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))),
			reason: `not a PostgreSQL server: it answered "HTTP/1.1 400 Bad Request"`},
		{name: "mysql on the port", url: "postgres://" + fakeServer(t, says(mysqlPacket([]byte("\x0a8.0.36\x00\x01\x00\x00\x00abcdefgh\x00")))),
			reason: `not a PostgreSQL server: it answered "8.0.36 abcdefgh"`},
	})
}

// The greeting of a real server, kept byte for byte, must parse whatever
// the server is; this one is MariaDB 10.11's.
func TestReadMySQLGreeting(t *testing.T) {
	greeting := []byte("d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x04\x00\x00\x00Blv1--9u\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00dt:dia-YZ7E5\x00mysql_native_password\x00")
	got, err := readMySQLGreeting(bufio.NewReader(bytes.NewReader(greeting)))
	if err != nil || got != "5.5.5-10.11.19-MariaDB-0+deb12u1" {
		t.Errorf("readMySQLGreeting = %q, %v; want the version, nil", got, err)
	}
}
