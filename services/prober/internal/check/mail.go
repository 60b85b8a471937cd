package check

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// mailCheckers are the checks of mail servers and FTP. Each reads the
// server's greeting, the first thing to go when such a server is sick (out
// of processes, out of disk, refusing everyone), says hello where its
// protocol expects it, and leaves politely.
var mailCheckers = map[string]checker{
	"smtp":  smtpCheck,
	"smtps": smtpCheck,
	"imap":  imapCheck,
	"imaps": imapCheck,
	"pop3":  pop3Check,
	"pop3s": pop3Check,
	"ftp":   ftpCheck,
}

// endpoints are each mail scheme's default port and whether it speaks TLS
// from the first byte.
var endpoints = map[string]struct {
	port     string
	implicit bool
}{
	"smtp": {"25", false}, "smtps": {"465", true},
	"imap": {"143", false}, "imaps": {"993", true},
	"pop3": {"110", false}, "pop3s": {"995", true},
}

func endpoint(scheme string) (port string, implicitTLS bool) {
	e := endpoints[scheme]
	return e.port, e.implicit
}

// maxConversation bounds what a server may send in one check. A greeting
// and an EHLO answer take a few hundred bytes; a server that streams more
// is broken, and must not fill the prober's memory until the timeout.
const maxConversation = 64 << 10

// maxSaid is how much of what a server said a reason quotes: enough to
// recognise the answer, short enough for a text message.
const maxSaid = 80

// byeWait bounds the wait for the answer to a goodbye: the check has its
// verdict by then, and a server slow to say goodbye is not down.
const byeWait = time.Second

// conversation is one check's exchange of lines with a server in the style
// the mail protocols and FTP share: commands and answers as lines ending in
// CRLF.
type conversation struct {
	conn net.Conn // a *tls.Conn once encrypted
	br   *bufio.Reader
	text *textproto.Reader
	left int                  // bytes the server may still send
	tls  *tls.ConnectionState // nil while in plain text
}

// talk connects to u, on defaultPort if it names none and over TLS when
// implicitTLS, and hands the conversation to converse. The certificate's
// expiry is judged last, because a server that does not answer matters more
// than a certificate that will soon expire.
func (r *Runner) talk(ctx context.Context, u *url.URL, defaultPort string, implicitTLS bool, certWarnDays int, converse func(*conversation) error) error {
	c, err := r.dial(ctx, u, defaultPort, implicitTLS)
	if err != nil {
		return err
	}
	cv := &conversation{conn: c, left: maxConversation}
	cv.br = bufio.NewReader(readFunc(cv.read))
	cv.text = textproto.NewReader(cv.br)
	defer func() { cv.conn.Close() }()
	// The connection's deadline is the context's own; a context cancelled
	// before it, as when the prober shuts down, must end a read as well.
	// c stays the connection that was dialled, and its deadline holds for
	// the TLS that STARTTLS layers on it.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		cv.tls = &st
	}

	if err := converse(cv); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			// Not a timeout, whatever the read that was cut short says.
			return fmt.Errorf("check cancelled: %w", ctx.Err())
		}
		return err
	}
	if cv.tls != nil {
		return r.checkExpiry(*cv.tls, certWarnDays)
	}
	return nil
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// read reads from the connection until the server has used up
// maxConversation.
func (cv *conversation) read(p []byte) (int, error) {
	if cv.left <= 0 {
		return 0, failure(fmt.Sprintf("the server sent more than %d KiB", maxConversation>>10))
	}
	if len(p) > cv.left {
		p = p[:cv.left]
	}
	n, err := cv.conn.Read(p)
	cv.left -= n
	return n, err
}

// line reads one line, without its line ending.
func (cv *conversation) line() (string, error) {
	return cv.text.ReadLine()
}

// send writes one command. Callers make sure that what they put in it
// holds no line break, which would make it two commands.
func (cv *conversation) send(cmd string) error {
	_, err := io.WriteString(cv.conn, cmd+"\r\n")
	return err
}

// command sends cmd and reads the numbered answer to it.
func (cv *conversation) command(cmd string) (codedReply, error) {
	if err := cv.send(cmd); err != nil {
		return codedReply{}, err
	}
	return cv.readReply()
}

// bye sends the protocol's goodbye and waits, for byeWait at most, until
// answered has read the answer. What goes wrong here does not change the
// verdict.
func (cv *conversation) bye(ctx context.Context, cmd string, answered func() error) {
	deadline := time.Now().Add(byeWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	cv.conn.SetDeadline(deadline)
	if cv.send(cmd) == nil {
		answered()
	}
}

// startTLS encrypts the conversation once the server has agreed to
// STARTTLS (or STLS, or AUTH TLS). Whatever the server sent after agreeing
// and before the handshake would later be read as if it had come
// encrypted, a known way to inject answers, so a server that does that
// fails the check.
func (cv *conversation) startTLS(ctx context.Context, r *Runner, host string) error {
	if cv.br.Buffered() > 0 {
		return failure("the server sent more after agreeing to STARTTLS")
	}
	tc, err := r.handshake(ctx, cv.conn, host)
	if err != nil {
		return err
	}
	cv.conn = tc
	st := tc.ConnectionState()
	cv.tls = &st
	return nil
}

// codedReply is an answer of an SMTP or FTP server: a three-digit code and
// text, on one line ("250 OK") or several ("220-first", "220 last").
type codedReply struct {
	code  int      // 0 when the line did not start with a code
	lines []string // the text of each line, without the code
}

// readReply reads one whole answer. Within a multi-line answer FTP allows
// lines without the code (RFC 959, 4.2), so only the code followed by a
// space, or the code alone, ends it.
func (cv *conversation) readReply() (codedReply, error) {
	line, err := cv.line()
	if err != nil {
		return codedReply{}, err
	}
	code, more, text, ok := parseReplyLine(line)
	if !ok {
		return codedReply{lines: []string{line}}, nil
	}
	rp := codedReply{code: code, lines: []string{text}}
	for more {
		if line, err = cv.line(); err != nil {
			return codedReply{}, err
		}
		c, m, text, ok := parseReplyLine(line)
		if !ok || c != code {
			rp.lines = append(rp.lines, line)
			continue
		}
		more = m
		rp.lines = append(rp.lines, text)
	}
	return rp, nil
}

// skipReply reads an answer that does not matter.
func (cv *conversation) skipReply() error {
	_, err := cv.readReply()
	return err
}

func parseReplyLine(line string) (code int, more bool, text string, ok bool) {
	if len(line) < 3 || line[0] < '1' || line[0] > '5' || !isDigit(line[1]) || !isDigit(line[2]) {
		return 0, false, "", false
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	switch {
	case len(line) == 3:
		return code, false, "", true
	case line[3] == ' ':
		return code, false, line[4:], true
	case line[3] == '-':
		return code, true, line[4:], true
	}
	return 0, false, "", false
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// raw is the answer as the server wrote its first line, code and all.
func (rp codedReply) raw() string {
	if rp.code == 0 {
		return rp.lines[0]
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", rp.code, rp.lines[0]))
}

// String is the answer as a reason quotes it.
func (rp codedReply) String() string { return said(rp.raw()) }

// said makes what a server sent fit in a reason: printable, on one line, at
// most maxSaid characters, so that neither a long banner nor a control
// character reaches the person on call.
func said(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if s == "" {
		return "(an empty line)"
	}
	if utf8.RuneCountInString(s) > maxSaid {
		s = strings.TrimSpace(string([]rune(s)[:maxSaid-1])) + "…"
	}
	return s
}
