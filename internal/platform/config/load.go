package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration file, where it is.
type Problem struct {
	File string
	Line int // 0 when the problem has no place, like a missing section
	Msg  string

	path []any // where in the document, until Line is known
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is every problem found in one file, in the order of the file.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Env looks up an environment variable; os.LookupEnv in production.
type Env func(name string) (string, bool)

// Load reads, decodes, defaults and validates the file at path. Secrets are
// read from env and from files named relative to the config file. On any
// problem the error is a Problems listing all of them.
func Load(path string, env Env) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data, env)
}

// LoadFor is Load for a process that runs only services (names of
// `tocsin run --services`; none for a command that runs no service): a
// secret that none of them reads is checked for its form but never read,
// so that each process holds only the secrets it needs and needs only
// those in its environment.
func LoadFor(path string, env Env, services []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parseFor(path, data, env, append([]string{}, services...)) // never nil: no service reads every secret
}

// Parse is Load for a file already read.
func Parse(path string, data []byte, env Env) (*Config, error) {
	return parseFor(path, data, env, nil)
}

// usedBy names the services that read a secret.
func usedBy(services ...string) []string { return services }

// parseFor decodes, defaults and validates data for a process running the
// services runs (nil: every one).
func parseFor(path string, data []byte, env Env, runs []string) (*Config, error) {
	var cfg Config
	var problems Problems
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.Is(err, io.EOF):
			return nil, Problems{{File: path, Msg: "the file is empty"}}
		case !errors.As(err, &te):
			return nil, Problems{syntaxProblem(path, err)}
		}
		for _, e := range te.Errors {
			problems = append(problems, typeProblem(path, e))
		}
	}
	cfg.File = path
	cfg.raw = data
	cfg.setDefaults()
	cfg.buildIndex()
	v := &validator{file: path, env: env, runs: runs}
	v.validate(&cfg)
	if len(v.problems) > 0 {
		// Only now is the file read again for the line of each problem: a
		// file of 100,000 servers is large, and its node tree larger.
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err == nil && len(root.Content) > 0 {
			for i := range v.problems {
				v.problems[i].Line = lineOf(root.Content[0], v.problems[i].path)
			}
		}
	}
	problems = append(problems, v.problems...)
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
		return nil, problems
	}
	return &cfg, nil
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(path string, err error) Problem {
	msg := err.Error()
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{File: path, Line: n, Msg: m[2]}
	}
	return Problem{File: path, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

var (
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	duplicateRE    = regexp.MustCompile(`^field (\S+) already set in type \S+$`)
	mismatchRE     = regexp.MustCompile("^cannot unmarshal !!(\\w+) `?(.*?)`? into (\\S+)$")
)

// typeProblem turns yaml's messages, which speak of Go types, into ones
// that speak of the file.
func typeProblem(path, e string) Problem {
	p := syntaxProblem(path, errors.New(e))
	switch {
	case unknownFieldRE.MatchString(p.Msg):
		m := unknownFieldRE.FindStringSubmatch(p.Msg)
		p.Msg = fmt.Sprintf("unknown key %q", m[1])
		if keys := keysOf[m[2]]; len(keys) > 0 {
			p.Msg += " (expected one of: " + strings.Join(keys, ", ") + ")"
		}
	case duplicateRE.MatchString(p.Msg):
		p.Msg = fmt.Sprintf("key %q appears twice", duplicateRE.FindStringSubmatch(p.Msg)[1])
	case mismatchRE.MatchString(p.Msg):
		m := mismatchRE.FindStringSubmatch(p.Msg)
		got := m[2]
		if m[1] == "map" || m[1] == "seq" {
			got = map[string]string{"map": "a mapping", "seq": "a list"}[m[1]]
		} else {
			got = strconv.Quote(got)
		}
		p.Msg = fmt.Sprintf("expected %s, got %s", describe(m[3]), got)
	}
	return p
}

func describe(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "config."):
		return "a mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "time.Time":
		return "a time like 2026-11-21T02:00:00Z"
	}
	return "text"
}

// keysOf maps each config struct's Go type name to the keys it accepts, for
// the hint on an unknown key.
var keysOf = func() map[string][]string {
	m := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != reflect.TypeFor[Config]().PkgPath() {
			return
		}
		if _, seen := m[t.String()]; seen {
			return
		}
		m[t.String()] = nil
		var keys []string
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			keys = append(keys, name)
			walk(f.Type)
		}
		m[t.String()] = keys
	}
	walk(reflect.TypeFor[Config]())
	return m
}()
