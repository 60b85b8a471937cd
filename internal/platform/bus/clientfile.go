package bus

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ClientFileName is the file in a data directory through which "tocsin
// run", when its embedded server listens, tells the tocsin commands on the
// same box where that is and how to log in. Only the user tocsin runs as
// (and root) can read it: the bus can acknowledge incidents, post to the
// public and delete streams, and the file is the key to it.
const ClientFileName = "nats-client.json"

// ClientFile is what the client file holds. The names are those of a NATS
// CLI context, so that "nats --context DIR/nats-client.json" works too.
type ClientFile struct {
	URL      string `json:"url"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// clientUser is the user the client file logs in as.
const clientUser = "operator"

// ClientCredentials are the credentials for the embedded server of the data
// directory dir: those of its client file when there is one that only its
// owner can read, so that a copy made for another host keeps working after
// a restart; new ones otherwise, with a random password (rand.Text: 130 bits).
// made reports which.
func ClientCredentials(dir string) (c Credentials, made bool, err error) {
	f, err := ReadClientFile(dir)
	if err == nil && f.User == clientUser {
		return Credentials{User: f.User, Password: f.Password}, false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errClientFileUnsafe) && !errors.Is(err, errClientFileMalformed) {
		return Credentials{}, false, err
	}
	return Credentials{User: clientUser, Password: rand.Text()}, true, nil
}

// WriteClientFile writes f as dir's client file, readable by its owner only,
// in place of any there. A reader sees the old file or the new one whole.
func WriteClientFile(dir string, f ClientFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write the nats client file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ClientFileName+".*") // mode 0600
	if err != nil {
		return fmt.Errorf("write the nats client file: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write the nats client file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write the nats client file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the nats client file: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, ClientFileName)); err != nil {
		return fmt.Errorf("write the nats client file: %w", err)
	}
	return nil
}

// RemoveClientFile removes dir's client file, if any: a server that no
// longer listens should not send commands to an address nobody serves.
func RemoveClientFile(dir string) error {
	err := os.Remove(filepath.Join(dir, ClientFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

var (
	errClientFileUnsafe    = errors.New("others could read or have written it")
	errClientFileMalformed = errors.New("not a nats client file")
)

// ReadClientFile reads dir's client file. It refuses one that others could
// read, or that another user wrote (unless read by root): a file planted in
// a directory would send the commands, and what they say, elsewhere. Its
// errors name the file, never what is in it.
func ReadClientFile(dir string) (ClientFile, error) {
	path := filepath.Join(dir, ClientFileName)
	fh, err := os.Open(path)
	if err != nil {
		return ClientFile{}, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return ClientFile{}, err
	}
	if fi.Mode().Perm()&0o077 != 0 || !ownedByUs(fi) {
		return ClientFile{}, fmt.Errorf("%s: %w (mode %v): remove it, and tocsin run makes another", path, errClientFileUnsafe, fi.Mode().Perm())
	}
	var f ClientFile
	if err := json.NewDecoder(fh).Decode(&f); err != nil || f.URL == "" || f.User == "" || f.Password == "" {
		return ClientFile{}, fmt.Errorf("%s: %w", path, errClientFileMalformed)
	}
	return f, nil
}
