// Command mkpasswd makes a password for each user of the Tocsin NATS
// accounts, as DIR/accounts.conf names them: the plain password in
// DIR/secrets/USER.password, for the client's --nats-password-file, and its
// bcrypt hash in DIR/passwords.conf, which accounts.conf includes. A user
// whose password file exists keeps its password, so running it again only
// adds what is missing: a user added to accounts.conf (the prober of a new
// location) gets one.
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
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// userRE finds a user of accounts.conf and the variable its password is in.
var userRE = regexp.MustCompile(`\{\s*user:\s*([A-Za-z0-9_-]+),\s*password:\s*\$([A-Z0-9_]+)\s*[,}\n]`)

// user is one user of accounts.conf.
type user struct{ name, variable string }

// users are the users accounts.conf defines, in its order.
func users(accounts []byte) ([]user, error) {
	var out []user
	for _, m := range userRE.FindAllSubmatch(accounts, -1) {
		out = append(out, user{name: string(m[1]), variable: string(m[2])})
	}
	if len(out) == 0 {
		return nil, errors.New("accounts.conf defines no user with a password variable")
	}
	return out, nil
}

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
	accounts, err := os.ReadFile(filepath.Join(dir, "accounts.conf"))
	if err != nil {
		return fmt.Errorf("%w: copy deploy/nats/accounts.conf there first", err)
	}
	list, err := users(accounts)
	if err != nil {
		return err
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	var conf strings.Builder
	conf.WriteString("# bcrypt hashes of the Tocsin NATS users' passwords, made by mkpasswd.\n")
	for _, u := range list {
		path := filepath.Join(secrets, u.name+".password")
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
			return fmt.Errorf("hash the password of %s: %w", u.name, err)
		}
		fmt.Fprintf(&conf, "%s: %q\n", u.variable, hash)
	}
	return os.WriteFile(filepath.Join(dir, "passwords.conf"), []byte(conf.String()), 0o600)
}
