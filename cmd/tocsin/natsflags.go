package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// natsFlags are how a command proves who it is to NATS and checks that it
// talks to the right server: one kind of credential, each read from a file
// so that no secret appears on a command line, in ps or in a unit file, and
// TLS with a private CA and, if the server asks, a client certificate.
// "tocsin run" and every operator command share them.
//
// An operator command given no credential finds those of the "tocsin run"
// on its box: in the client file of its data directory (--data), which says
// where its embedded server listens and how to log in.
type natsFlags struct {
	user, passwordFile string
	creds              string
	nkey               string
	ca, cert, key      string

	data string        // a tocsin run's data directory, for its client file
	fs   *flag.FlagSet // to tell a flag given from its default; nil: no client file
}

// register adds the flags of a command that talks to a running tocsin to
// fs: the credentials, TLS, and --data.
func (n *natsFlags) register(fs *flag.FlagSet) {
	n.registerAuth(fs)
	fs.StringVar(&n.data, "data", "data", "the --data directory of the tocsin run on this box; with no credential flags, its "+bus.ClientFileName+" says where its NATS server listens and how to log in")
	n.fs = fs
}

// registerAuth adds the credential and TLS flags alone, for "tocsin run",
// whose --data is its own.
func (n *natsFlags) registerAuth(fs *flag.FlagSet) {
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
	if kinds == 0 && n.fs != nil {
		local, err := n.local()
		if err != nil {
			return nil, err
		}
		opts = append(opts, local...)
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

// local is the connection options of the client file in --data: its user
// and password, and, unless --nats is given, its URL. The password goes
// only to the server the file names: with --nats elsewhere, the file is
// left alone. A missing file is an error only when --data was given.
func (n *natsFlags) local() ([]nats.Option, error) {
	given := map[string]bool{}
	n.fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cf, err := bus.ReadClientFile(n.data)
	switch {
	case errors.Is(err, fs.ErrNotExist) && given["data"]:
		return nil, fmt.Errorf("--data %s: no %s: is tocsin run running there with --nats-listen?", n.data, bus.ClientFileName)
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("--data: %w", err)
	}
	var natsURL string
	if f := n.fs.Lookup("nats"); f != nil && given["nats"] {
		natsURL = f.Value.String()
	}
	if natsURL != "" && natsURL != cf.URL {
		if given["data"] {
			return nil, fmt.Errorf("--data %s has the credentials of %s, not of --nats %s", n.data, cf.URL, natsURL)
		}
		return nil, nil
	}
	opts := []nats.Option{nats.UserInfo(cf.User, cf.Password)}
	if natsURL == "" {
		opts = append(opts, func(o *nats.Options) error {
			o.Servers = []string{cf.URL}
			return nil
		})
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
