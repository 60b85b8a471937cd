package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

func parseNatsFlags(t *testing.T, args ...string) *natsFlags {
	t.Helper()
	var n natsFlags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestNatsFlagsRefuseBadCombinations(t *testing.T) {
	dir := t.TempDir()
	const secret = "hunter2-do-not-print"
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(secret+"\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	notSeed := filepath.Join(dir, "seed")
	os.WriteFile(notSeed, []byte(secret), 0o600)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"password without user", []string{"--nats-password-file", pw}, "--nats-password-file needs --nats-user"},
		{"user without password", []string{"--nats-user", "prober"}, "--nats-user prober needs --nats-password-file"},
		{"two kinds of credential", []string{"--nats-user", "prober", "--nats-password-file", pw, "--nats-creds", pw}, "not several"},
		{"missing password file", []string{"--nats-user", "prober", "--nats-password-file", filepath.Join(dir, "nope")}, "--nats-password-file: open " + filepath.Join(dir, "nope")},
		{"empty password file", []string{"--nats-user", "prober", "--nats-password-file", empty}, "the file is empty"},
		{"missing creds", []string{"--nats-creds", filepath.Join(dir, "nope.creds")}, "--nats-creds: open"},
		{"not a seed", []string{"--nats-nkey", notSeed}, "--nats-nkey " + notSeed},
		{"cert without key", []string{"--nats-cert", pw}, "--nats-cert and --nats-key go together"},
		{"missing CA", []string{"--nats-ca", filepath.Join(dir, "ca.pem")}, "--nats-ca: open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNatsFlags(t, tt.args...).options()
			if err == nil {
				t.Fatalf("options() accepted %q", tt.args)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %q", err)
			}
		})
	}
}

// TestNatsFlagsConnect connects with each kind of credential to a server
// that requires it, and fails with a wrong one.
func TestNatsFlagsConnect(t *testing.T) {
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	pub, _ := kp.PublicKey()
	seedFile := filepath.Join(dir, "svc.nk")
	os.WriteFile(seedFile, seed, 0o600)
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	wrongFile := filepath.Join(dir, "wrong")
	os.WriteFile(wrongFile, []byte("guess"), 0o600)

	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		Users: []*server.User{{Username: "admin", Password: "s3cret"}},
		Nkeys: []*server.NkeyUser{{Nkey: pub}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(ns.Shutdown)

	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"user and password", []string{"--nats-user", "admin", "--nats-password-file", pwFile}, true},
		{"nkey seed", []string{"--nats-nkey", seedFile}, true},
		{"wrong password", []string{"--nats-user", "admin", "--nats-password-file", wrongFile}, false},
		{"no credentials", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := parseNatsFlags(t, tt.args...).options()
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(ns.ClientURL(), append(opts, nats.MaxReconnects(0))...)
			if tt.ok && err != nil {
				t.Fatalf("connect: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatal("the server let a client in without the right credentials")
			}
			if err == nil {
				nc.Close()
			}
		})
	}
}

// TestNatsFlagsFindTheClientFile: with no credential flags, a command uses
// the client file of --data, and sends its password only to the server it
// names.
func TestNatsFlagsFindTheClientFile(t *testing.T) {
	dir := t.TempDir()
	if err := bus.WriteClientFile(dir, bus.ClientFile{URL: "nats://127.0.0.1:4333", User: "operator", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		wantURL   string // "" when the file is not used
		wantError string
	}{
		{"the file's server", []string{"--data", dir}, "nats://127.0.0.1:4333", ""},
		{"--nats the same", []string{"--data", dir, "--nats", "nats://127.0.0.1:4333"}, "nats://127.0.0.1:4333", ""},
		{"--nats elsewhere", []string{"--data", dir, "--nats", "nats://10.0.0.1:4222"}, "", "has the credentials of nats://127.0.0.1:4333, not of --nats nats://10.0.0.1:4222"},
		{"credentials given", []string{"--data", dir, "--nats-creds", filepath.Join(dir, bus.ClientFileName)}, "", ""},
		{"no file where asked", []string{"--data", empty}, "", "no " + bus.ClientFileName},
		{"no file by default", []string{"--nats", "nats://10.0.0.1:4222"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n natsFlags
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.String("nats", "nats://127.0.0.1:4222", "")
			n.register(fs)
			if !slices.Contains(tt.args, "--data") {
				n.data = filepath.Join(empty, "data")
			}
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			opts, err := n.options()
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("options() = %v, want an error with %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o := nats.GetDefaultOptions()
			o.Servers = []string{fs.Lookup("nats").Value.String()}
			for _, opt := range opts {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			usesFile := o.Password == "s3cret"
			if tt.wantURL == "" {
				if usesFile {
					t.Errorf("the file's password goes to %v", o.Servers)
				}
				return
			}
			if !usesFile || !slices.Equal(o.Servers, []string{tt.wantURL}) {
				t.Errorf("connects to %v with the file's password: %v; want %s, true", o.Servers, usesFile, tt.wantURL)
			}
		})
	}
}
