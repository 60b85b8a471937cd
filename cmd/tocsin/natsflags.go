package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// natsFlags are how a command proves who it is to NATS and checks that it
// talks to the right server: one kind of credential, each read from a file
// so that no secret appears on a command line, in ps or in a unit file, and
// TLS with a private CA and, if the server asks, a client certificate.
// "tocsin run" and every operator command share them.
type natsFlags struct {
	user, passwordFile string
	creds              string
	nkey               string
	ca, cert, key      string
}

// register adds the flags to fs.
func (n *natsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&n.user, "nats-user", "", "NATS user name; the password is read from --nats-password-file")
	fs.StringVar(&n.passwordFile, "nats-password-file", "", "file holding the NATS user's password")
	fs.StringVar(&n.creds, "nats-creds", "", "a NATS .creds file (user JWT and nkey seed)")
	fs.StringVar(&n.nkey, "nats-nkey", "", "file holding a NATS nkey seed (SU…)")
	fs.StringVar(&n.ca, "nats-ca", "", "PEM file of the CA that signed the NATS servers' certificates; turns TLS on")
	fs.StringVar(&n.cert, "nats-cert", "", "PEM client certificate for NATS, with --nats-key; turns TLS on")
	fs.StringVar(&n.key, "nats-key", "", "PEM private key of --nats-cert")
}

// tls reports whether the flags ask for TLS. A tls:// URL asks for it too,
// and nats.go honours that by itself.
func (n *natsFlags) tls() bool { return n.ca != "" || n.cert != "" || n.key != "" }

// options builds the connection options. Every file is read now, so that a
// missing or unreadable one is reported before anything connects; errors
// name the flag and the file, never what is in it.
func (n *natsFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	kinds := 0
	for _, set := range []bool{n.user != "" || n.passwordFile != "", n.creds != "", n.nkey != ""} {
		if set {
			kinds++
		}
	}
	if kinds > 1 {
		return nil, errors.New("give one of --nats-user with --nats-password-file, --nats-creds or --nats-nkey, not several")
	}
	switch {
	case n.user != "" || n.passwordFile != "":
		if n.user == "" {
			return nil, errors.New("--nats-password-file needs --nats-user")
		}
		if n.passwordFile == "" {
			return nil, fmt.Errorf("--nats-user %s needs --nats-password-file (passwords are read from files only)", n.user)
		}
		pw, err := readSecret("--nats-password-file", n.passwordFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(n.user, pw))
	case n.creds != "":
		if _, err := readSecret("--nats-creds", n.creds); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(n.creds))
	case n.nkey != "":
		opt, err := nats.NkeyOptionFromSeed(n.nkey)
		if err != nil {
			// nats.go's errors about a seed file name the file and what
			// is wrong with it, never the seed.
			return nil, fmt.Errorf("--nats-nkey %s: %w", n.nkey, err)
		}
		opts = append(opts, opt)
	}
	if (n.cert == "") != (n.key == "") {
		return nil, errors.New("--nats-cert and --nats-key go together")
	}
	if n.ca != "" {
		if err := readable("--nats-ca", n.ca); err != nil {
			return nil, err
		}
		opts = append(opts, nats.RootCAs(n.ca))
	}
	if n.cert != "" {
		if err := readable("--nats-cert", n.cert); err != nil {
			return nil, err
		}
		if err := readable("--nats-key", n.key); err != nil {
			return nil, err
		}
		opts = append(opts, nats.ClientCert(n.cert, n.key))
	}
	if n.tls() {
		opts = append(opts, nats.Secure())
	}
	return opts, nil
}

// readSecret reads a secret from a file, without its trailing newline.
// Its errors name the flag and the path only.
func readSecret(flagName, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s: the file is empty", flagName, path)
	}
	return s, nil
}

func readable(flagName, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	return f.Close()
}
