package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: whatever the file holds, Parse returns a config or problems,
// each with a file:line, never shows a secret, and never panics.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("boxes: [{id: &a x, servers: *a}]"))
	f.Add([]byte("site: {name: !!binary aGk=}\nchecks: {interval: 99999999999999h}"))
	env := func(string) (string, bool) { return "secret-value", true }
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, env)
		if err != nil {
			if strings.Contains(err.Error(), "secret-value") {
				t.Errorf("a problem shows a secret: %v", err)
			}
			for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") && !strings.Contains(line, "problem") {
					t.Errorf("a problem without its place: %q", line)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("no config and no error")
		}
	})
}
