package servertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/textproto"
	"runtime"
	"strings"
	"testing"
	"time"
)

// dialText connects to addr, over TLS trusting cert when cert is not nil,
// for a few seconds at most.
func dialText(t *testing.T, addr string, cert *Cert) *textproto.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if cert != nil {
		tc := tls.Client(c, &tls.Config{ServerName: "127.0.0.1", RootCAs: cert.Pool})
		if err := tc.Handshake(); err != nil {
			c.Close()
			t.Fatalf("TLS to %s: %v", addr, err)
		}
		c = tc
	}
	tp := textproto.NewConn(c)
	t.Cleanup(func() { tp.Close() })
	return tp
}

func TestDovecot(t *testing.T) {
	d := StartDovecot(t, DovecotOptions{})
	tests := []struct {
		name, addr string
		cert       *Cert
		greeting   string
	}{
		{"imap", d.IMAP, nil, "* OK "},
		{"imaps", d.IMAPS, d.Cert, "* OK "},
		{"pop3", d.POP3, nil, "+OK "},
		{"pop3s", d.POP3S, d.Cert, "+OK "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line, err := dialText(t, tt.addr, tt.cert).ReadLine()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, tt.greeting) {
				t.Errorf("greeting %q, want it to start with %q", line, tt.greeting)
			}
		})
	}
}

func TestFTP(t *testing.T) {
	const user = "tocsin"
	f := StartFTP(t, FTPOptions{Username: user, Password: "s3cret-pa55"})
	tp := dialText(t, f.Addr, nil)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("banner: %v", err)
	}
	for _, step := range []struct {
		cmd  string
		code int
	}{{"USER " + user, 331}, {"PASS s3cret-pa55", 230}, {"QUIT", 221}} {
		id, err := tp.Cmd("%s", step.cmd)
		if err != nil {
			t.Fatal(err)
		}
		tp.StartResponse(id)
		_, msg, err := tp.ReadResponse(step.code)
		tp.EndResponse(id)
		if err != nil {
			t.Fatalf("%s: %v (%s)", strings.Fields(step.cmd)[0], err, msg)
		}
	}
}

// stopRecorder stands in for a test that a missing server stops, noting
// how it was stopped.
type stopRecorder struct {
	testing.TB
	skipped, failed string
}

func (r *stopRecorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *stopRecorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingServer(t *testing.T) {
	for _, require := range []string{"", "1"} {
		t.Run(RequireEnv+"="+require, func(t *testing.T) {
			t.Setenv(RequireEnv, require)
			r := &stopRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				find(r, "tocsin-no-such-package", "tocsin-no-such-server")
				t.Error("find returned for a server that is not installed")
			}()
			<-done
			const msg = "tocsin-no-such-server not installed: apt-get install tocsin-no-such-package"
			got, other := r.skipped, r.failed
			if require == "1" {
				got, other = r.failed, r.skipped
			}
			if !strings.HasPrefix(got, msg) || other != "" {
				t.Errorf("skipped %q, failed %q; want %q only from the right one", r.skipped, r.failed, msg)
			}
		})
	}
}
