// Command mkpasswd makes a password for each user of the Tocsin NATS
// accounts: the plain password in DIR/secrets/USER.password, for the
// client's --nats-password-file, and its bcrypt hash in DIR/passwords.conf,
// which accounts.conf includes. A user whose password file exists keeps its
// password, so running it again only adds what is missing.
//
//	go run ./deploy/nats/mkpasswd DIR
package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// users are the users accounts.conf defines, with the variable each
// password goes into.
var users = []string{"system", "admin", "operator", "prober", "verifier", "notifier", "escalator", "failover", "statuspage"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkpasswd DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintf(os.Stderr, "mkpasswd: %v\n", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	var conf strings.Builder
	conf.WriteString("# bcrypt hashes of the Tocsin NATS users' passwords, made by mkpasswd.\n")
	for _, u := range users {
		path := filepath.Join(secrets, u+".password")
		pw, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			pw = []byte(rand.Text())
			if err := os.WriteFile(path, append(pw, '\n'), 0o600); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(string(pw), "\r\n")), 11)
		if err != nil {
			return fmt.Errorf("hash the password of %s: %w", u, err)
		}
		fmt.Fprintf(&conf, "%s_PASSWORD: %q\n", strings.ToUpper(u), hash)
	}
	return os.WriteFile(filepath.Join(dir, "passwords.conf"), []byte(conf.String()), 0o600)
}
