package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// natsUsers are the users deploy/nats/accounts.conf defines.
var natsUsers = []string{"system", "admin", "operator", "prober-lon1", "prober-ams1", "prober-nyc1", "verifier", "notifier", "escalator", "failover", "domains", "push", "watchdog", "selfwatch", "statuspage", "staff"}

// deployedNATS is one node configured from deploy/nats: nats.conf with its
// accounts and users, a test password for each user, and TLS with
// certificates made for the test.
type deployedNATS struct {
	URL     string // tls://127.0.0.1:port
	Dir     string // CA, client certificate and passwords: see file
	NS      *server.Server
	WrongCA string // a CA that signed nothing the server holds
}

// file is a file of the node's test directory: "ca.pem", "client.pem",
// "client-key.pem", or "USER.password".
func (d *deployedNATS) file(name string) string { return filepath.Join(d.Dir, name) }

// auth is the flags with which user connects.
func (d *deployedNATS) auth(user string) []string {
	return []string{"--nats-user", user, "--nats-password-file", d.file(user + ".password"), "--nats-ca", d.file("ca.pem")}
}

// connect connects as user, reporting the server's permission violations on
// refused.
func (d *deployedNATS) connect(t *testing.T, user string) *bus.Bus {
	t.Helper()
	var nf natsFlags
	nf.user, nf.passwordFile, nf.ca = user, d.file(user+".password"), d.file("ca.pem")
	opts, err := nf.options()
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(d.URL, nil, t.Name()+" "+user, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(b.Close)
	return b
}

// startDeployedNATS starts an embedded server from the files in deploy/nats,
// as one node: the cluster block is dropped, everything else (accounts,
// users, permissions, TLS, JetStream) is as deployed.
func startDeployedNATS(t *testing.T) *deployedNATS {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	if err := os.Mkdir(conf, 0o700); err != nil {
		t.Fatal(err)
	}
	var passwords strings.Builder
	for _, u := range natsUsers {
		pw := "test-" + u + "-" + rand.Text()
		hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&passwords, "%s_PASSWORD: %q\n", strings.ToUpper(strings.ReplaceAll(u, "-", "_")), hash)
		if err := os.WriteFile(filepath.Join(dir, u+".password"), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(conf, "passwords.conf"), []byte(passwords.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	ca := newTestCA(t, "Tocsin test CA")
	ca.writeCert(t, filepath.Join(dir, "ca.pem"))
	ca.issue(t, "nats-1", filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))
	ca.issue(t, "tocsin client", filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	wrong := newTestCA(t, "Some other CA")
	wrong.writeCert(t, filepath.Join(dir, "wrong-ca.pem"))

	// What a node takes from its environment is given as variables at the
	// head of its nats.conf, where nats-server looks before the
	// environment: the same values, and no process-wide environment that
	// would keep the test from running beside others.
	var vars strings.Builder
	for _, kv := range [][2]string{
		{"NATS_NAME", "nats-1"}, {"NATS_LISTEN", "127.0.0.1:-1"}, {"NATS_CLUSTER", "127.0.0.1:-1"}, {"NATS_MONITOR", "127.0.0.1:-1"},
		{"NATS_STORE", filepath.Join(dir, "jetstream")},
		{"NATS_ROUTE_1", "tls://127.0.0.1:1"}, {"NATS_ROUTE_2", "tls://127.0.0.1:1"}, {"NATS_ROUTE_3", "tls://127.0.0.1:1"},
		{"NATS_CERT", filepath.Join(dir, "server.pem")}, {"NATS_KEY", filepath.Join(dir, "server-key.pem")}, {"NATS_CA", filepath.Join(dir, "ca.pem")},
	} {
		fmt.Fprintf(&vars, "%s: %q\n", kv[0], kv[1])
	}
	for _, name := range []string{"nats.conf", "accounts.conf"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "nats.conf" {
			data = append([]byte(vars.String()), data...)
		}
		if err := os.WriteFile(filepath.Join(conf, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(conf, "nats.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/nats.conf: %v", err)
	}
	opts.Cluster = server.ClusterOpts{} // one node
	opts.Routes = nil
	opts.HTTPPort = 0
	opts.NoSigs = true
	opts.NoLog = true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("the nats server from deploy/nats did not start")
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	addr := ns.Addr().(*net.TCPAddr)
	return &deployedNATS{URL: fmt.Sprintf("tls://127.0.0.1:%d", addr.Port), Dir: dir, NS: ns, WrongCA: filepath.Join(dir, "wrong-ca.pem")}
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, der: der}
}

func (ca *testCA) writeCert(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue makes a certificate for 127.0.0.1 and localhost, good for a server
// and a client, and writes it and its key as PEM.
func (ca *testCA) issue(t *testing.T, name, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
