package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// scriptedServer plays a server's part from a script, for the failures a
// real server will not produce on command: it writes its greeting, answers
// each command line with what the script says, and keeps the commands.
type scriptedServer struct {
	addr  string
	conns sync.WaitGroup
	mu    sync.Mutex
	sent  []string // the commands received, on every connection
}

// answer says what to write back to a command line ("" for nothing, so the
// client waits) and whether to hang up after writing it.
type answer func(cmd string) (reply string, hangUp bool)

// politely answers a goodbye (QUIT, LOGOUT) with bye and hangs up, and
// every other command with other.
func politely(bye, other string) answer {
	return func(cmd string) (string, bool) {
		if cmd == "QUIT" || strings.HasSuffix(cmd, " LOGOUT") {
			return bye, true
		}
		return other, false
	}
}

func startScripted(t *testing.T, greeting string, script answer) *scriptedServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scriptedServer{addr: l.Addr().String()}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		l.Close()
		s.conns.Wait()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer s.conns.Done()
				defer c.Close()
				go func() { <-stop; c.Close() }()
				s.serve(c, greeting, script)
			}()
		}
	}()
	return s
}

func (s *scriptedServer) serve(c net.Conn, greeting string, script answer) {
	// No test runs longer; a client that is never done must not keep the
	// test waiting for this connection.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte(greeting)); err != nil {
		return
	}
	r := textproto.NewReader(bufio.NewReader(c))
	for {
		cmd, err := r.ReadLine()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.sent = append(s.sent, cmd)
		s.mu.Unlock()
		reply, hangUp := script(cmd)
		if _, err := c.Write([]byte(reply)); err != nil || hangUp {
			return
		}
	}
}

// commands waits until every connection has ended and returns the commands
// the server received.
func (s *scriptedServer) commands(t *testing.T) []string {
	t.Helper()
	done := make(chan struct{})
	go func() { s.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the client did not hang up within 5s")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// mailCase is one check and what it must conclude.
type mailCase struct {
	name    string
	runner  *Runner
	spec    Spec // Timeout defaults to 5s
	reason  string
	partial bool            // reason is only the start of the reason
	warning string          // the start of the warning of a check that passes; empty: none
	script  *scriptedServer // if set, the server whose commands to check
	sent    []string        // what script must have received
}

func runMailCases(t *testing.T, cases []mailCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.spec.Timeout == 0 {
				tt.spec.Timeout = 5 * time.Second
			}
			got := tt.runner.Run(context.Background(), tt.spec)
			wantOK := tt.reason == ""
			matches := got.Reason == tt.reason || tt.partial && strings.HasPrefix(got.Reason, tt.reason)
			if got.OK != wantOK || !matches {
				t.Errorf("Run(%s) = ok %v %q, want ok %v %q", tt.spec.URL, got.OK, got.Reason, wantOK, tt.reason)
			}
			if !strings.HasPrefix(got.Warning, tt.warning) || (tt.warning == "") != (got.Warning == "") {
				t.Errorf("Run(%s) warns %q, want %q", tt.spec.URL, got.Warning, tt.warning)
			}
			if tt.spec.Password != "" && strings.Contains(got.Reason, tt.spec.Password) {
				t.Errorf("the reason %q gives the password away", got.Reason)
			}
			if got.Latency <= 0 || got.Latency > tt.spec.Timeout+byeWait+time.Second {
				t.Errorf("latency %v for a %v timeout", got.Latency, tt.spec.Timeout)
			}
			if tt.script != nil {
				if got := tt.script.commands(t); !slices.Equal(got, tt.sent) {
					t.Errorf("the server received %q, want %q", got, tt.sent)
				}
			}
		})
	}
}

// trust is a pool that trusts each certificate given in PEM.
func trust(t *testing.T, pems ...[]byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, p := range pems {
		if !pool.AppendCertsFromPEM(p) {
			t.Fatalf("no certificate in %q", p)
		}
	}
	return pool
}

func TestSaid(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct{ in, want string }{
		{"554 5.3.2 not accepting mail", "554 5.3.2 not accepting mail"},
		{"  * OK ready \t", "* OK ready"},
		{"", "(an empty line)"},
		{"\x1b[31mred\x00", "[31mred"},
		{"caf\xe9", "caf\uFFFD"},
		{long, strings.Repeat("x", maxSaid-1) + "…"},
		{strings.Repeat("é", 100), strings.Repeat("é", maxSaid-1) + "…"},
	}
	for _, tt := range tests {
		if got := said(tt.in); got != tt.want {
			t.Errorf("said(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		code   int
		lines  []string
		quoted string
	}{
		{"one line", "220 mx.example ESMTP\r\n", 220, []string{"mx.example ESMTP"}, "220 mx.example ESMTP"},
		{"code alone", "220\r\n", 220, []string{""}, "220"},
		{"multi-line", "250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250,
			[]string{"mx.example", "PIPELINING", "STARTTLS"}, "250 mx.example"},
		{"FTP free text inside", "220-Welcome\r\n  to our server\r\n220-\r\n221 not the end\r\n220 ready\r\n", 220,
			[]string{"Welcome", "  to our server", "", "221 not the end", "ready"}, "220 Welcome"},
		{"no code", "SSH-2.0-OpenSSH_9.2\r\n", 0, []string{"SSH-2.0-OpenSSH_9.2"}, "SSH-2.0-OpenSSH_9.2"},
		{"code out of range", "999 what\r\n", 0, []string{"999 what"}, "999 what"},
		{"code glued to text", "220ready\r\n", 0, []string{"220ready"}, "220ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rp, err := textConversation(tt.in).readReply()
			if err != nil {
				t.Fatal(err)
			}
			if rp.code != tt.code || !slices.Equal(rp.lines, tt.lines) || rp.String() != tt.quoted {
				t.Errorf("got %d %q %q, want %d %q %q", rp.code, rp.lines, rp.String(), tt.code, tt.lines, tt.quoted)
			}
		})
	}
}

// textConversation is a conversation that reads in from memory.
func textConversation(in string) *conversation {
	cv := &conversation{left: maxConversation}
	cv.br = bufio.NewReader(strings.NewReader(in))
	cv.text = textproto.NewReader(cv.br)
	return cv
}

// FuzzReadReply makes sure that no answer makes the reader panic or quote
// more than a reason may hold.
func FuzzReadReply(f *testing.F) {
	for _, seed := range []string{
		"220 ok\r\n", "220-a\r\n220 b\r\n", "220-a\r\nfree\r\n", "5", "554-\xff\x00\r\n554 \r\n", "\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		rp, err := textConversation(string(in)).readReply()
		if err != nil {
			return
		}
		if len(rp.lines) == 0 {
			t.Fatalf("no lines in the answer to %q", in)
		}
		if s := rp.String(); utf8.RuneCountInString(s) > maxSaid || !utf8.ValidString(s) || bytes.ContainsAny([]byte(s), "\r\n") {
			t.Errorf("quoted %q", s)
		}
	})
}

// A check cut short by its caller, as when the prober shuts down, ends at
// once and does not pass for a timeout.
func TestMailCheckCancelled(t *testing.T) {
	stall := stalling(t)
	for _, scheme := range []string{"smtp", "imap", "pop3", "ftp"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			got := New(nil).Run(ctx, Spec{URL: scheme + "://" + stall, Timeout: 10 * time.Second})
			if got.OK || got.Reason != "check cancelled: context canceled" {
				t.Errorf("got ok %v %q, want the cancellation", got.OK, got.Reason)
			}
			if got.Latency > 2*time.Second {
				t.Errorf("took %v to notice the cancellation", got.Latency)
			}
		})
	}
}
