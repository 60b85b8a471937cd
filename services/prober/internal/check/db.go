package check

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"unicode"
)

// mysqlCheck reads the greeting that a MySQL or MariaDB server sends to
// every client before it asks who the client is. A server that greets has
// its listener, a thread and a free connection slot for us, which is what an
// application needs to connect; the check sends nothing, so it needs no
// account on the server.
//
// A server that will not take the connection says why in an ERR packet in
// place of the greeting: "Too many connections", a blocked host, a host no
// account may connect from.
//
// MariaDB logs each check as an aborted connection ("closed normally
// without authentication") at its default log_warnings of 2.
func mysqlCheck(ctx context.Context, r *Runner, u *url.URL, _ Spec) error {
	c, err := r.dial(ctx, u, "3306", false)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_, err = readMySQLGreeting(bufio.NewReader(c))
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// mysqlMaxGreeting bounds the greeting we are willing to read. Real ones are
// about a hundred bytes; a larger length means the bytes were never a
// MySQL packet.
const mysqlMaxGreeting = 4 << 10

// readMySQLGreeting reads the first packet of the MySQL client/server
// protocol and returns the server's version when it is a protocol 10
// handshake, the only one servers have sent since MySQL 3.21.
func readMySQLGreeting(br *bufio.Reader) (version string, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return "", err
	}
	// Every packet starts with a 3-byte little-endian length and a sequence
	// number, which is 0 for the first packet of a connection.
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if hdr[3] != 0 || n == 0 || n > mysqlMaxGreeting {
		return "", failure("not a MySQL server: it sent " + sample(hdr[:], br))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return "", err
	}
	switch p[0] {
	case 0x0a:
		v, ok := parseMySQLHandshake(p)
		if !ok {
			return "", failure("not a MySQL server: malformed greeting " + sample(append(hdr[:], p...), br))
		}
		return v, nil
	case 0xff:
		return "", mysqlRefusal(p)
	case 0x09:
		return "", failure("MySQL server speaks the obsolete protocol 9, which current clients cannot use")
	}
	return "", failure("not a MySQL server: it sent " + sample(append(hdr[:], p...), br))
}

// parseMySQLHandshake checks the fixed part of a protocol 10 greeting:
// the version, NUL-terminated, then a 4-byte connection id, 8 bytes of
// the authentication challenge and a zero filler byte.
func parseMySQLHandshake(p []byte) (version string, ok bool) {
	rest := p[1:]
	end := bytes.IndexByte(rest, 0)
	if end <= 0 {
		return "", false
	}
	version, rest = string(rest[:end]), rest[end+1:]
	if len(rest) < 4+8+1 || rest[12] != 0 {
		return "", false
	}
	return version, true
}

// mysqlRefusal turns an ERR packet sent instead of the greeting into the
// server's own words, which name the fix ("Too many connections", "Host
// '…' is blocked because of many connection errors; unblock with
// 'mariadb-admin flush-hosts'").
func mysqlRefusal(p []byte) error {
	if len(p) < 3 {
		return failure("MySQL server refused the connection")
	}
	code := binary.LittleEndian.Uint16(p[1:3])
	msg := p[3:]
	// With protocol 4.1 the message follows a '#' and a 5-character
	// SQLSTATE; at connect time the server does not yet know what the
	// client speaks and usually leaves them out.
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	text := printable(msg)
	if text == "" {
		return failure(fmt.Sprintf("MySQL server refused the connection (error %d)", code))
	}
	return failure(fmt.Sprintf("MySQL server refused the connection: %s (error %d)", text, code))
}

// pgSSLRequest is the one message PostgreSQL answers before a client has
// named a user: a length of 8 and the code 1234 5679 (80877103).
var pgSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// postgresCheck asks a PostgreSQL server whether it would speak TLS. The
// question comes before any startup message, so it needs no account, and
// the answer comes from the postmaster itself: a server that answers is
// accepting connections. Either answer, 'S' (yes) or 'N' (no), means up.
//
// A server that answered 'S' logs that no TLS handshake followed ("could
// not accept SSL connection: EOF detected"), once per check: the price of
// asking without an account, and a line an operator should expect.
func postgresCheck(ctx context.Context, r *Runner, u *url.URL, _ Spec) error {
	c, err := r.dial(ctx, u, "5432", false)
	if err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err = askPostgres(c)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func askPostgres(c net.Conn) error {
	if _, err := c.Write(pgSSLRequest); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	b, err := br.ReadByte()
	if err != nil {
		return err
	}
	switch b {
	case 'S', 'N':
		return nil
	case 'E':
		return postgresError(br)
	}
	return failure("not a PostgreSQL server: it answered " + sample([]byte{b}, br))
}

// postgresError reads an ErrorResponse (its leading 'E' already read) and
// returns its message. A server sends one here when it cannot take the
// connection at all, or when it is older than protocol 3 and speaks the
// error as plain text.
func postgresError(br *bufio.Reader) error {
	var lenb [4]byte
	if _, err := io.ReadFull(br, lenb[:]); err != nil {
		return failure("PostgreSQL server answered with an error")
	}
	n := int(binary.BigEndian.Uint32(lenb[:]))
	if n < 4 || n > 16<<10 {
		// Protocol 2: the message is a NUL-terminated string.
		text := printable(append(lenb[:], peekAll(br)...))
		return failure("PostgreSQL server answered with an error: " + text)
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(br, body); err != nil {
		return failure("PostgreSQL server answered with an error")
	}
	// Fields are a type byte and a NUL-terminated string; 'M' is the
	// message meant for a person.
	for len(body) > 1 {
		typ := body[0]
		end := bytes.IndexByte(body[1:], 0)
		if end < 0 {
			break
		}
		if typ == 'M' {
			return failure("PostgreSQL server answered with an error: " + printable(body[1:1+end]))
		}
		body = body[2+end:]
	}
	return failure("PostgreSQL server answered with an error")
}

// sample quotes the start of what a server sent, so a person can see what
// answered instead: "SSH-2.0-OpenSSH_9.2p1", an HTTP status line.
func sample(first []byte, br *bufio.Reader) string {
	const most = 40
	b := append([]byte(nil), first...)
	if len(b) < most {
		b = append(b, peekAll(br)...)
	}
	if len(b) > most {
		b = b[:most]
	}
	return fmt.Sprintf("%q", printable(b))
}

// peekAll returns what br holds already, without waiting for more.
func peekAll(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	return b
}

// printable keeps a server's text readable in a reason, on one line: control
// bytes and broken UTF-8 become spaces, and runs of spaces one.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, string(b))
	return strings.Join(strings.Fields(s), " ")
}
