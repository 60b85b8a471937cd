// Package servertest runs real servers from Debian's packages — Dovecot
// for IMAP and POP3, Pure-FTPd for FTP, MariaDB and PostgreSQL, HAProxy —
// on loopback for the length of one test, so that clients of those
// protocols are tested against what the servers really send, multi-line
// banners and delays on a wrong password included, rather than against
// what we believe they send.
//
// Each server gets a configuration or data directory of its own in a fresh
// temporary directory, runs in the foreground as a child of the test on
// ports chosen for it, and is stopped and removed when the test ends. A
// server takes one to three seconds to start, so a test starts one and
// shares it among its subtests.
package servertest

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// RequireEnv names the environment variable that, set to 1, turns a server
// that is not installed from a skipped test into a failed one. CI installs
// the packages and sets it, so that a broken install cannot pass as a run
// that merely skipped; a developer without the packages still gets a green
// run of everything else.
const RequireEnv = "TOCSIN_REQUIRE_SERVERS"

// startTimeout bounds how long a server may take to answer, and a step
// that prepares one to finish. Ready servers answer within a few seconds;
// the margin is for a loaded CI machine.
const startTimeout = 30 * time.Second

// stopTimeout bounds how long a server may take to stop when asked before
// it is killed.
const stopTimeout = 15 * time.Second

// find looks name up in PATH, then in /usr/sbin and /usr/bin, which are not
// in every user's PATH.
func find(t testing.TB, pkg, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); isFile(p) {
			return p
		}
	}
	SkipOrFail(t, "%s not installed: apt-get install %s", name, pkg)
	return ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// SkipOrFail skips a test that lacks what it needs (a server, a tool),
// saying why; with TOCSIN_REQUIRE_SERVERS=1 it fails it instead.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires every server)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// workDir makes a directory for one server and removes it when the test
// ends. Not t.TempDir: a server may run as another user, who could not
// reach a directory inside the test's private one; and unix socket paths,
// which Dovecot, MariaDB and PostgreSQL keep there, must stay under 108
// bytes whatever the test is called.
func workDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "servertest-"+name+"-")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// freePort returns a loopback address that was free a moment ago. The
// server must bind it itself, so there is a small window for another
// process to take it; on a test machine that is rare enough.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// Database is a database server, MariaDB or PostgreSQL, started for one
// test.
type Database struct {
	Addr string // 127.0.0.1:port, where the server listens
	Dir  string // the server's data, socket and log, removed at the end
	// MaxConnections is how many client connections the server takes
	// before it refuses more; small, so a test can exhaust it cheaply.
	// MariaDB takes one more, kept for an administrator.
	MaxConnections int

	proc proc
}

// Log returns what the server has written so far, for a failing test to
// show.
func (db *Database) Log() string { return db.proc.log() }

// newDatabase makes the server's directory and chooses its port.
func newDatabase(t testing.TB, name string) *Database {
	t.Helper()
	dir := workDir(t, name)
	return &Database{Addr: freePort(t), Dir: dir, proc: proc{dir: dir}}
}

// proc runs a server, and the steps that prepare it, in its work directory
// dir, as cred when not nil, writing their output to a log there.
type proc struct {
	dir  string
	cred *syscall.Credential
}

func (p proc) logPath() string { return filepath.Join(p.dir, "server.log") }

// log returns what the server and its preparation have written so far, for
// a failing test to show.
func (p proc) log() string {
	b, err := os.ReadFile(p.logPath())
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// command prepares name to run in p's directory as p's user, writing to
// the log; the caller closes the log.
func (p proc) command(ctx context.Context, name string, args ...string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Pdeathsig: a test binary that is killed must not leave a server
	// running behind it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Pdeathsig: syscall.SIGKILL}
	return cmd, logf, nil
}

// run runs a step that prepares the server to its end, for at most
// startTimeout, failing the test if it fails.
func (p proc) run(t testing.TB, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd, logf, err := p.command(ctx, name, args...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	defer logf.Close()
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", startTimeout)
	}
	if err != nil {
		t.Fatalf("servertest: %s: %v\n%s", filepath.Base(name), err, p.log())
	}
}

// serve starts a server that stays in the foreground, waits until each of
// greeters sends its first line and each of listeners accepts a
// connection, and when the test ends sends the server stop, the signal
// that asks it to shut down, and kills whatever of it is left.
func (p proc) serve(t testing.TB, stop syscall.Signal, greeters, listeners []string, name string, args ...string) {
	t.Helper()
	cmd, logf, err := p.command(context.Background(), name, args...)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	defer logf.Close()
	// Setpgid: servers fork a process per connection or per role, and the
	// whole group is killed together.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatalf("servertest: %s: %v", filepath.Base(name), err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-exited
		}
		// Children that outlived their master would hold the ports.
		syscall.Kill(-pgid, syscall.SIGKILL)
	})

	deadline := time.Now().Add(startTimeout)
	answers := func(addr string, ready func(string) error) {
		var err error
		if !wait.Until(context.Background(), time.Until(deadline), func() bool {
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				t.Fatalf("servertest: %s exited before answering on %s: %v\n%s", filepath.Base(name), addr, err, p.log())
			default:
			}
			err = ready(addr)
			return err == nil
		}) {
			t.Fatalf("servertest: %s not answering on %s after %s: %v\n%s", filepath.Base(name), addr, startTimeout, err, p.log())
		}
	}
	for _, addr := range greeters {
		answers(addr, greets)
	}
	for _, addr := range listeners {
		answers(addr, listens)
	}
}

// greets succeeds once the server at addr sends a line: a server may accept
// connections before it is ready to greet (Dovecot's login processes wait
// for its authentication process), and the first check should not measure
// that.
func greets(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// listens succeeds once the server at addr accepts a connection. It is a
// bare connect: PostgreSQL logs nothing for it, where any bytes written
// would be logged as a malformed startup packet.
func listens(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Cert is a self-signed certificate for loopback, valid for 127.0.0.1, ::1
// and "localhost", in files a server's configuration can name.
type Cert struct {
	// Pool trusts the certificate and nothing else.
	Pool *x509.CertPool
	// PEM is the certificate, for a client configured from a file.
	PEM      []byte
	NotAfter time.Time
	// CertFile and KeyFile hold the certificate and its private key in
	// PEM; the key file is readable by its owner only, as PostgreSQL
	// demands.
	CertFile, KeyFile string
}

// NewCert makes a certificate that expires validFor from now, so that a
// test can serve one about to expire, and writes it to a directory removed
// when the test ends.
func NewCert(t testing.TB, validFor time.Duration) *Cert {
	t.Helper()
	c, err := newCert(t.TempDir(), time.Now(), validFor)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	return c
}

func newCert(dir string, now time.Time, validFor time.Duration) (*Cert, error) {
	// From an hour ago: a client's clock a little behind is fine.
	pair, pool, err := standin.SelfSigned("servertest on localhost", now.Add(-time.Hour), now.Add(validFor))
	if err != nil {
		return nil, err
	}
	der := pair.Certificate[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	c := &Cert{
		Pool:     pool,
		PEM:      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		NotAfter: pair.Leaf.NotAfter,
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
	}
	if err := os.WriteFile(c.CertFile, c.PEM, 0o644); err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(c.KeyFile, keyPEM, 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

// runWithTimeout runs a short step whose output a server's preparation
// needs, for at most startTimeout.
func runWithTimeout(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
