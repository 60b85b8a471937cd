package servertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// FTP is a Pure-FTPd server on a loopback port with one account.
type FTP struct {
	Addr string // 127.0.0.1:port
}

// FTPOptions configure an FTP server.
type FTPOptions struct {
	// Username and Password are the one account the server knows;
	// anonymous logins are refused.
	Username, Password string
}

// StartFTP starts pure-ftpd, from the pure-ftpd package, in the foreground
// with its own virtual-user database, and waits until it greets.
//
// Pure-FTPd waits 3 to 6 seconds before it answers a wrong password, and
// that cannot be turned off: a test of a refused login needs a timeout
// longer than that.
func StartFTP(t testing.TB, opts FTPOptions) *FTP {
	t.Helper()
	pureftpd := find(t, "pure-ftpd", "pure-ftpd")
	purepw := find(t, "pure-ftpd", "pure-pw")
	if os.Geteuid() != 0 {
		// Debian builds it with privilege separation, which needs root:
		// as anyone else it answers every right password with 421.
		SkipOrFail(t, "pure-ftpd logs users in only when started as root")
	}
	if opts.Username == "" || strings.ContainsAny(opts.Username, ":\r\n") || strings.ContainsAny(opts.Password, "\r\n") {
		t.Fatalf("servertest: an FTP account needs a username without ':', and neither it nor the password may hold a line break")
	}
	dir := workDir(t, "ftp")
	f := &FTP{Addr: freePort(t)}

	// Pure-FTPd logs no one in as root, so the account belongs to nobody
	// (65534), at home in a directory of its own.
	const uid, gid = 65534, 65534
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	// The work directory is private; the account must reach its home.
	for _, p := range []string{dir, home} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("servertest: %v", err)
		}
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatalf("servertest: %v", err)
	}

	// pure-pw would hash with Argon2 at a cost that makes every login take
	// seconds; SHA-512 crypt, which the server checks through crypt(3), is
	// quick. The "/./" makes the home a chroot.
	out, err := runWithTimeout("openssl", "passwd", "-6", opts.Password)
	if err != nil {
		t.Fatalf("servertest: openssl passwd: %v\n%s", err, out)
	}
	hash := strings.TrimSpace(string(out))
	line := fmt.Sprintf("%s:%s:%d:%d::%s/./::::::::::::\n", opts.Username, hash, uid, gid, home)
	passwd, db := filepath.Join(dir, "pureftpd.passwd"), filepath.Join(dir, "pureftpd.pdb")
	if err := os.WriteFile(passwd, []byte(line), 0o600); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	p := proc{dir: dir}
	p.run(t, purepw, "mkdb", db, "-f", passwd)

	p.serve(t, syscall.SIGTERM, []string{f.Addr}, nil, pureftpd,
		"-S", "127.0.0.1,"+port(f.Addr),
		"-l", "puredb:"+db,
		"-E", // no anonymous logins
		"-H", // no reverse DNS of clients
		// Pure-FTPd logs only to syslog, which a container may not
		// have; its log file stays empty but for a failed start.
		"-f", "none",
	)
	return f
}
