// Package dbtest runs real database servers, MariaDB and PostgreSQL from
// Debian's packages, on loopback for the length of one test, so that code
// speaking their wire protocols is tested against the servers themselves
// rather than against what we believe they send.
//
// Each server gets a data directory of its own in a fresh temporary
// directory, is started in the foreground as a child of the test, and is
// stopped and removed when the test ends. A server takes one to three
// seconds to start, so a test starts one and shares it among its subtests.
package dbtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that, set to 1, turns a server
// that is not installed from a skipped test into a failed one. CI installs
// the packages and sets it, so that a broken install cannot pass as a run
// that merely skipped; a developer without the packages still gets a green
// run of everything else.
const RequireEnv = "TOCSIN_REQUIRE_SERVERS"

// startTimeout bounds how long a server may take to listen. Ready servers
// listen within a few seconds; the margin is for a loaded CI machine.
const startTimeout = 30 * time.Second

// Server is a database server started for one test.
type Server struct {
	Addr string // 127.0.0.1:port, where the server listens
	Dir  string // the server's data, socket and log, removed at the end
	// MaxConnections is how many client connections the server takes
	// before it refuses more; small, so a test can exhaust it cheaply.
	// MariaDB takes one more, kept for an administrator.
	MaxConnections int

	log string // the server's stdout and stderr
}

// Log returns what the server has written so far, for a failing test to
// show.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// MariaDB starts mariadbd, from the mariadb-server package, with a fresh
// data directory made by mariadb-install-db. It runs as the test's user,
// root included (--user=root), and has no accounts a test would use: it is
// for tests of the protocol's handshake.
func MariaDB(t testing.TB) *Server {
	t.Helper()
	mariadbd := find(t, "mariadb-server", "mariadbd", "/usr/sbin/mariadbd")
	installDB := find(t, "mariadb-server", "mariadb-install-db", "/usr/bin/mariadb-install-db")

	s := newServer(t, "mariadb")
	s.MaxConnections = 10 // MariaDB's minimum
	data := filepath.Join(s.Dir, "data")
	// InnoDB's defaults size it for production; these make a data
	// directory in about a second. Native AIO is off because sandboxes and
	// some container runtimes do not offer it.
	common := []string{
		"--no-defaults", // must come first
		"--datadir=" + data,
		"--innodb-buffer-pool-size=16M",
		"--innodb-log-file-size=4M",
		"--innodb-use-native-aio=0",
	}
	if os.Geteuid() == 0 {
		common = append(common, "--user=root") // it refuses root without
	}
	// The accounts are for localhost, which is what the server calls a
	// client on 127.0.0.1 without asking DNS; a server that did not know
	// the client's host would refuse it before greeting.
	install := append(slices.Clone(common), "--skip-test-db", "--skip-name-resolve")
	run(t, s, nil, installDB, install...)

	args := append(slices.Clone(common),
		"--bind-address=127.0.0.1",
		"--port="+port(s.Addr),
		"--socket="+filepath.Join(s.Dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(s.Dir, "mysqld.pid"),
		"--max-connections="+strconv.Itoa(s.MaxConnections),
		"--skip-log-bin",
	)
	serve(t, s, nil, syscall.SIGTERM, mariadbd, args...)
	return s
}

// PostgreSQL starts postgres, from the postgresql package, on a cluster
// fresh from initdb, with TLS on (as Debian configures it) using a
// certificate made for the test. PostgreSQL refuses to run as root, so as
// root it runs as the postgres system user the package creates.
func PostgreSQL(t testing.TB) *Server {
	t.Helper()
	postgres := findPostgres(t)
	initdb := filepath.Join(filepath.Dir(postgres), "initdb")

	s := newServer(t, "postgresql")
	s.MaxConnections = 10
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			skipOrFail(t, "no postgres system user to run PostgreSQL as (apt-get install postgresql creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	cert, key := filepath.Join(s.Dir, "server.crt"), filepath.Join(s.Dir, "server.key")
	if err := writeCertificate(cert, key); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	if cred != nil {
		for _, p := range []string{s.Dir, cert, key} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("dbtest: %v", err)
			}
		}
	}
	data := filepath.Join(s.Dir, "data")
	// --no-sync and fsync=off: the cluster lives for one test, and
	// durability costs seconds.
	run(t, s, cred, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	// SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients.
	serve(t, s, cred, syscall.SIGINT, postgres,
		"-D", data,
		"-h", "127.0.0.1",
		"-p", port(s.Addr),
		"-k", s.Dir,
		"-N", strconv.Itoa(s.MaxConnections),
		"-c", "fsync=off",
		"-c", "ssl=on",
		"-c", "ssl_cert_file="+cert,
		"-c", "ssl_key_file="+key,
	)
	return s
}

// findPostgres finds the server binary, which Debian keeps out of PATH in
// /usr/lib/postgresql/<version>/bin; the newest version wins.
func findPostgres(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return real
		}
		return p
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(found) == 0 {
		skipOrFail(t, "postgres not installed: apt-get install postgresql")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	return found[len(found)-1]
}

// find looks name up in PATH, then at fallback: /usr/sbin is not in every
// user's PATH.
func find(t testing.TB, pkg, name, fallback string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	skipOrFail(t, "%s not installed: apt-get install %s", name, pkg)
	return ""
}

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 requires every server)", msg, RequireEnv)
	}
	t.Skip(msg)
}

// newServer makes the server's directory and chooses its port.
func newServer(t testing.TB, name string) *Server {
	t.Helper()
	// Not t.TempDir: the server may run as another user, who could not
	// reach a directory inside the test's private one; and unix socket
	// paths must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "dbtest-"+name+"-")
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &Server{Addr: freePort(t), Dir: dir, log: filepath.Join(dir, "server.log")}
}

// freePort returns a loopback address that was free a moment ago. The
// server must bind it itself, so there is a small window for another
// process to take it; on a test machine that is rare enough.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// command prepares name to run in the server's directory, as cred when not
// nil, writing to the server's log.
func command(s *Server, cred *syscall.Credential, name string, args ...string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// Pdeathsig: a test binary that is killed must not leave a database
	// server running behind it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	return cmd, logf, nil
}

// run runs a preparation step to its end, failing the test if it fails.
func run(t testing.TB, s *Server, cred *syscall.Credential, name string, args ...string) {
	t.Helper()
	cmd, logf, err := command(s, cred, name, args...)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer logf.Close()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("dbtest: %s: %v", filepath.Base(name), err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(startTimeout):
		cmd.Process.Kill()
		err = fmt.Errorf("still running after %s", startTimeout)
		<-done
	}
	if err != nil {
		t.Fatalf("dbtest: %s: %v\n%s", filepath.Base(name), err, s.Log())
	}
}

// serve starts the server, waits until it accepts TCP connections, and
// stops it with stop when the test ends.
func serve(t testing.TB, s *Server, cred *syscall.Credential, stop syscall.Signal, name string, args ...string) {
	t.Helper()
	cmd, logf, err := command(s, cred, name, args...)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	defer logf.Close()
	if err := cmd.Start(); err != nil {
		t.Fatalf("dbtest: %s: %v", filepath.Base(name), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	deadline := time.Now().Add(startTimeout)
	for {
		// A bare connect: PostgreSQL logs nothing for it, where any bytes
		// written would be logged as a malformed startup packet.
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			t.Fatalf("dbtest: %s exited before listening on %s: %v\n%s", filepath.Base(name), s.Addr, err, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dbtest: %s not listening on %s after %s: %v\n%s", filepath.Base(name), s.Addr, startTimeout, err, s.Log())
		}
	}
}
