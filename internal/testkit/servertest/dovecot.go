package servertest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dovecot is a Dovecot server speaking IMAP and POP3, each in plain text
// and over implicit TLS, on four loopback ports. It has no mailboxes a test
// would use: it is for tests of greetings, TLS and logging out.
type Dovecot struct {
	IMAP, IMAPS string // 127.0.0.1:port
	POP3, POP3S string
	Cert        *Cert // what the TLS ports present
}

// DovecotOptions configure a Dovecot.
type DovecotOptions struct {
	// Cert is what the TLS ports present; nil makes one valid for a day.
	Cert *Cert
}

// StartDovecot starts dovecot, from the dovecot-imapd and dovecot-pop3d
// packages, with a configuration of its own in the foreground (-F), and
// waits until it greets on every port.
//
// As root Dovecot drops privileges to the dovecot and dovenull users its
// package creates, and chroots its login processes; as anyone else it runs
// every process as that user, without chroot, which it allows.
func StartDovecot(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	dovecot := find(t, "dovecot-imapd dovecot-pop3d", "dovecot")
	for _, proto := range []string{"imap", "pop3"} {
		// The protocol binaries come from separate packages from the
		// master, which would start and then fail at the first login.
		if !isFile(filepath.Join("/usr/lib/dovecot", proto)) {
			SkipOrFail(t, "dovecot's %s is not installed: apt-get install dovecot-%sd", proto, proto)
		}
	}
	// Dovecot 2.4 renamed most of the settings written below.
	out, err := runWithTimeout(dovecot, "--version")
	if version := strings.TrimSpace(string(out)); err != nil || !strings.HasPrefix(version, "2.3.") {
		SkipOrFail(t, "servertest configures Dovecot 2.3 (Debian 12); dovecot --version says %q (%v)", version, err)
	}
	if opts.Cert == nil {
		opts.Cert = NewCert(t, 24*time.Hour)
	}
	d := &Dovecot{
		IMAP: freePort(t), IMAPS: freePort(t),
		POP3: freePort(t), POP3S: freePort(t),
		Cert: opts.Cert,
	}
	dir := workDir(t, "dovecot")
	users := ""
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatalf("servertest: %v", err)
		}
		// Dovecot would give its sockets to the dovecot group, which
		// only root may do.
		users = fmt.Sprintf("default_internal_user = %s\ndefault_internal_group = %s\ndefault_login_user = %s\n",
			u.Username, g.Name, u.Username)
	}
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(dovecotConf(dir, d, users)), 0o644); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	proc{dir: dir}.serve(t, syscall.SIGTERM,
		[]string{d.IMAP, d.POP3}, []string{d.IMAPS, d.POP3S},
		dovecot, "-F", "-c", conf)
	return d
}

// dovecotConf is a whole configuration, in Dovecot 2.3's syntax: nothing of
// the system's /etc/dovecot is read. Logging goes to stderr, which serve
// keeps in the work directory for a failing test to show.
func dovecotConf(dir string, d *Dovecot, users string) string {
	chroot := ""
	if users != "" {
		// Only root may chroot.
		chroot = "  chroot =\n"
	}
	conf := `# Written by servertest for one test.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = servertest
log_path = /dev/stderr
{users}protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:{dir}/mail
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = home={dir}/home
}
service imap-login {
{chroot}  inet_listener imap {
    port = {imap}
  }
  inet_listener imaps {
    port = {imaps}
    ssl = yes
  }
}
service pop3-login {
{chroot}  inet_listener pop3 {
    port = {pop3}
  }
  inet_listener pop3s {
    port = {pop3s}
    ssl = yes
  }
}
`
	return strings.NewReplacer(
		"{dir}", dir,
		"{users}", users,
		"{chroot}", chroot,
		"{cert}", d.Cert.CertFile,
		"{key}", d.Cert.KeyFile,
		"{imap}", port(d.IMAP),
		"{imaps}", port(d.IMAPS),
		"{pop3}", port(d.POP3),
		"{pop3s}", port(d.POP3S),
	).Replace(conf)
}
