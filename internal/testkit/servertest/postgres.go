package servertest

import (
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

// StartPostgreSQL starts postgres, from the postgresql package, on a
// cluster fresh from initdb, with TLS on (as Debian configures it) using a
// certificate made for the test. PostgreSQL refuses to run as root, so as
// root it runs as the postgres system user the package creates.
func StartPostgreSQL(t testing.TB) *Database {
	t.Helper()
	postgres := findPostgres(t)
	initdb := filepath.Join(filepath.Dir(postgres), "initdb")

	s := newDatabase(t, "postgresql")
	s.MaxConnections = 10
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			SkipOrFail(t, "no postgres system user to run PostgreSQL as (apt-get install postgresql creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.proc.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	cert, err := newCert(s.Dir, time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	if cred := s.proc.cred; cred != nil {
		// The server's user must write in its directory and read its key,
		// which only the key's owner may read.
		for _, p := range []string{s.Dir, cert.CertFile, cert.KeyFile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatalf("servertest: %v", err)
			}
		}
	}
	data := filepath.Join(s.Dir, "data")
	// --no-sync and fsync=off: the cluster lives for one test, and
	// durability costs seconds.
	s.proc.run(t, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	// SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for clients.
	s.proc.serve(t, syscall.SIGINT, nil, []string{s.Addr}, postgres,
		"-D", data,
		"-h", "127.0.0.1",
		"-p", port(s.Addr),
		"-k", s.Dir,
		"-N", strconv.Itoa(s.MaxConnections),
		"-c", "fsync=off",
		"-c", "ssl=on",
		"-c", "ssl_cert_file="+cert.CertFile,
		"-c", "ssl_key_file="+cert.KeyFile,
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
		SkipOrFail(t, "postgres not installed: apt-get install postgresql")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(found, func(a, b string) int { return version(a) - version(b) })
	return found[len(found)-1]
}
