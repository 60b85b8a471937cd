package servertest

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
)

// StartMariaDB starts mariadbd, from the mariadb-server package, with a
// fresh data directory made by mariadb-install-db. It runs as the test's
// user, root included (--user=root), and has no accounts a test would use:
// it is for tests of the protocol's handshake.
func StartMariaDB(t testing.TB) *Database {
	t.Helper()
	mariadbd := find(t, "mariadb-server", "mariadbd")
	installDB := find(t, "mariadb-server", "mariadb-install-db")

	s := newDatabase(t, "mariadb")
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
	s.proc.run(t, installDB, install...)

	args := append(slices.Clone(common),
		"--bind-address=127.0.0.1",
		"--port="+port(s.Addr),
		"--socket="+filepath.Join(s.Dir, "mysqld.sock"),
		"--pid-file="+filepath.Join(s.Dir, "mysqld.pid"),
		"--max-connections="+strconv.Itoa(s.MaxConnections),
		"--skip-log-bin",
	)
	s.proc.serve(t, syscall.SIGTERM, nil, []string{s.Addr}, mariadbd, args...)
	return s
}
