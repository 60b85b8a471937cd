package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// oneBoxConfig writes the config of a one-box tocsin watching one server on
// loopback, and returns its path.
func oneBoxConfig(t *testing.T, dir string) string {
	t.Helper()
	web, err := newLoopbackServer("web1", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(web.Off)
	path := filepath.Join(dir, "tocsin.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, `
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: web, name: Websites, servers: [{id: web1, check: %q}]}]
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 1, from: alerts@example.net, tls: none}}
`, web.Check()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startOneBox starts "tocsin run" with config on an embedded server with
// the verifier alone (a service with no socket of its own) and waits until
// it runs.
func startOneBox(t *testing.T, config string, extra ...string) (p *process, data string) {
	t.Helper()
	data = filepath.Join(t.TempDir(), "data")
	args := append([]string{"run", "--config", config, "--data", data, "--services", "verifier", "--shutdown-timeout", "10s"}, extra...)
	p = startProcess(t, args...)
	wait.Within(t, 30*time.Second, "tocsin run to start", func() bool { return strings.Contains(p.log.String(), "tocsin running") })
	return p, data
}

// listeningSockets is the local address of every TCP socket of this process
// that listens, from /proc.
func listeningSockets(t *testing.T) map[string]bool {
	t.Helper()
	ours := map[string]bool{} // socket inodes
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(link, "socket:[") {
			ours[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	listening := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[3] == "0A" && ours[fields[9]] {
				listening[table+" "+fields[1]] = true
			}
		}
		f.Close()
	}
	return listening
}

// TestAttackRunHasNoNATSListenerByDefault: "tocsin run" on one box serves
// its bus to nobody: no socket at all, so no other local user can post a
// staff update, acknowledge an incident or delete a stream.
func TestAttackRunHasNoNATSListenerByDefault(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the process's sockets from /proc")
	}
	config := oneBoxConfig(t, t.TempDir()) // with a server to watch, listening
	before := listeningSockets(t)
	_, data := startOneBox(t, config, "--admin-listen", "")
	for s := range listeningSockets(t) {
		if !before[s] {
			t.Errorf("tocsin run with only the verifier listens on %s", s)
		}
	}
	if _, err := os.Stat(filepath.Join(data, bus.ClientFileName)); !os.IsNotExist(err) {
		t.Errorf("tocsin run without a listener left a client file: %v", err)
	}
	// The commands say how to reach it rather than try a port nobody serves.
	var out, errs strings.Builder
	if code := run(context.Background(), []string{"status", "--data", data}, &out, &errs, testEnv); code == 0 || !strings.Contains(errs.String(), "--nats-listen") {
		t.Errorf("tocsin status --data of a run that does not listen exited %d:\n%s%s", code, out.String(), errs.String())
	}
}

// TestAttackNATSListenerNeedsTheCredentials: asked to listen, the bus lets
// in only the user whose password tocsin run keeps in its data directory,
// readable by its owner alone, and the commands on the box find it there.
func TestAttackNATSListenerNeedsTheCredentials(t *testing.T) {
	p, data := startOneBox(t, oneBoxConfig(t, t.TempDir()), "--nats-listen", "127.0.0.1:0")
	path := filepath.Join(data, bus.ClientFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	cf, err := bus.ReadClientFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cf.URL, "nats://127.0.0.1:") {
		t.Errorf("client file URL %q, want nats://127.0.0.1:PORT", cf.URL)
	}
	if strings.Contains(p.log.String(), cf.Password) {
		t.Errorf("the log shows the password:\n%s", p.log.String())
	}

	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"no credentials", nil},
		{"the in-process user", []nats.Option{nats.UserInfo("tocsin", "")}},
		{"a wrong password", []nats.Option{nats.UserInfo(cf.User, cf.Password+"x")}},
		{"a token", []nats.Option{nats.Token(cf.Password)}},
	} {
		nc, err := nats.Connect(cf.URL, append(tc.opts, nats.MaxReconnects(0), nats.Timeout(5*time.Second))...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: a plain client connected to the bus of tocsin run", tc.name)
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: %v, want an authorization violation", tc.name, err)
		}
	}
	nc, err := nats.Connect(cf.URL, nats.UserInfo(cf.User, cf.Password), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("the client file's credentials: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(context.Background()); err != nil {
		t.Errorf("JetStream with the client file's credentials: %v", err)
	}

	// The commands on the box find the bus and the password by themselves.
	var out, errs strings.Builder
	run(context.Background(), []string{"status", "--data", data}, &out, &errs, testEnv)
	if !regexp.MustCompile(`\n  verifier +ready`).MatchString(out.String()) {
		t.Errorf("tocsin status --data:\n%s%s", out.String(), errs.String())
	}
	out.Reset()
	errs.Reset()
	if code := run(context.Background(), []string{"maintenance", "list", "--data", data}, &out, &errs, testEnv); code != 0 {
		t.Errorf("tocsin maintenance list --data exited %d:\n%s%s", code, out.String(), errs.String())
	}
	// A client file others can read is not used: the password may be out.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	errs.Reset()
	if code := run(context.Background(), []string{"status", "--data", data}, &out, &errs, testEnv); code == 0 || !strings.Contains(errs.String(), "others could read") {
		t.Errorf("tocsin status with a client file others can read exited %d: %s", code, errs.String())
	}
	if strings.Contains(errs.String(), cf.Password) {
		t.Errorf("the error shows the password: %s", errs.String())
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}

	// The admin server reports how full the bus is.
	if m := regexp.MustCompile(`admin server listening.* listen=(\S+)`).FindStringSubmatch(p.log.String()); m == nil {
		t.Error("no admin server in the log")
	} else if fill := sample(scrapeMetrics(t, "http://"+m[1]), "tocsin_bus_store_max_bytes", "stream", "TOCSIN_EVENTS"); fill <= 0 {
		t.Errorf("tocsin_bus_store_max_bytes of TOCSIN_EVENTS: %v", fill)
	}
}

// TestAttackNATSListenerBeyondLoopbackNeedsTLS: a bus other hosts can reach
// is refused without TLS, and with it takes only TLS and the credentials.
func TestAttackNATSListenerBeyondLoopbackNeedsTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := oneBoxConfig(t, dir)
	var errs strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, []string{"run", "--config", cfg, "--data", filepath.Join(dir, "data"), "--services", "verifier", "--admin-listen", "", "--nats-listen", "0.0.0.0:0"}, &strings.Builder{}, &errs, testEnv)
	if code == 0 || !strings.Contains(errs.String(), "not a loopback address") || !strings.Contains(errs.String(), "--nats-listen-cert") {
		t.Fatalf("tocsin run --nats-listen 0.0.0.0:0 without TLS exited %d:\n%s", code, errs.String())
	}

	ca := newTestCA(t, "Tocsin test CA")
	ca.writeCert(t, filepath.Join(dir, "ca.pem"))
	ca.issue(t, "tocsin", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	_, data := startOneBox(t, cfg, "--nats-listen", "0.0.0.0:0", "--nats-listen-cert", filepath.Join(dir, "cert.pem"), "--nats-listen-key", filepath.Join(dir, "key.pem"))
	cf, err := bus.ReadClientFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cf.URL, "tls://127.0.0.1:") {
		t.Errorf("client file URL %q, want tls://127.0.0.1:PORT", cf.URL)
	}
	plain := strings.Replace(cf.URL, "tls://", "nats://", 1)
	if nc, err := nats.Connect(plain, nats.UserInfo(cf.User, cf.Password), nats.MaxReconnects(0), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("connected without TLS to a bus beyond loopback")
	}
	if nc, err := nats.Connect(cf.URL, nats.RootCAs(filepath.Join(dir, "ca.pem")), nats.MaxReconnects(0), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("connected over TLS without credentials")
	}
	var out strings.Builder
	errs.Reset()
	run(ctx, []string{"status", "--data", data, "--nats-ca", filepath.Join(dir, "ca.pem")}, &out, &errs, testEnv)
	if !regexp.MustCompile(`\n  verifier +ready`).MatchString(out.String()) {
		t.Errorf("tocsin status --data --nats-ca over TLS:\n%s%s", out.String(), errs.String())
	}
}
