package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// The manifests an operator deploys must keep in step with the table: a
// service that "tocsin run" has and no manifest runs is a part of the
// alarm that nobody starts, and whose absence nothing reports when it is
// the self-watcher.

// deployDir is deploy/, from this package.
var deployDir = filepath.Join("..", "..", "deploy")

// TestManifestsRunEveryService: deploy/compose/compose.yaml and the
// Deployments of deploy/k8s run every service of the table, each as a
// process of its own connecting as its own NATS user with that user's
// password; those every installation expects run as shipped.
func TestManifestsRunEveryService(t *testing.T) {
	t.Parallel()
	users := accountUsers(t, filepath.Join(deployDir, "nats", "accounts.conf"))
	for _, m := range []struct {
		name, file string
		runs       func() ([]manifestRun, error)
		// unit names what runs a process; shipped says how one may not
		// start as shipped.
		unit, shipped string
		// secret is where a user's password comes from, env where a
		// service's own provider secrets do (by envKind); shared may be
		// given to every process (no secret in it).
		secret  func(user string) string
		envKind string
		env     func(service string, r manifestRun) string
		shared  []string
	}{
		{
			name: "compose", file: "deploy/compose/compose.yaml",
			runs: func() ([]manifestRun, error) { return composeRuns(filepath.Join(deployDir, "compose", "compose.yaml")) },
			unit: "service", shipped: "has a profile",
			secret:  func(user string) string { return "./nats/secrets/" + user + ".password" },
			envKind: "env_file", env: func(service string, _ manifestRun) string { return "./env/" + service + ".env" },
		},
		{
			name: "systemd", file: "deploy/systemd",
			runs: func() ([]manifestRun, error) {
				return systemdRuns(filepath.Join(deployDir, "systemd"), []string{"lon1", "ams1"})
			},
			unit: "unit", shipped: "is not shipped",
			secret:  func(user string) string { return "/etc/tocsin/nats/" + user + ".password" },
			envKind: "EnvironmentFile", env: func(service string, r manifestRun) string {
				if service == "prober" {
					return "/etc/tocsin/prober-" + r.args["location"] + ".env"
				}
				return "/etc/tocsin/" + service + ".env"
			},
			shared: []string{"/etc/tocsin/cluster.env"}, // the addresses of the NATS servers
		},
		{
			name: "k8s", file: "deploy/k8s",
			runs: func() ([]manifestRun, error) { return k8sRuns(filepath.Join(deployDir, "k8s")) },
			unit: "Deployment", shipped: "is in a file kustomization.yaml does not list",
			secret:  func(user string) string { return "tocsin-nats/" + user + ".password" },
			envKind: "envFrom Secret", env: func(service string, _ manifestRun) string { return "tocsin-" + service + "-env" },
		},
	} {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			runs, err := m.runs()
			if err != nil {
				t.Fatal(err)
			}
			problems := checkRuns(m.file, m.unit, m.shipped, m.secret, runs, users)
			for _, p := range append(problems, checkEnvs(m.file, m.envKind, m.env, m.shared, runs)...) {
				t.Error(p)
			}
		})
	}
}

// manifestRun is one process a manifest starts with "tocsin run".
type manifestRun struct {
	where string            // "compose.yaml: service verifier"
	args  map[string]string // its flags, by name without dashes
	// secrets maps each file it is given, by its path in the container,
	// to the password file or Secret key it comes from, as the operator
	// makes them: "./nats/secrets/verifier.password" or
	// "tocsin-nats/verifier.password".
	secrets map[string]string
	// secretDirs maps a directory where a whole Secret is mounted to the
	// Secret: each of its keys is a file there.
	secretDirs map[string]string
	// byDefault: started as shipped (no Compose profile; a file that
	// kustomization.yaml lists).
	byDefault bool
	// envs maps each source of its environment (a Compose env_file, a
	// Secret of envFrom or secretKeyRef, a systemd EnvironmentFile) to
	// whether it may be missing.
	envs map[string]bool
}

// checkRuns lists what is wrong with runs: a service of the table that no
// run starts (or, expected of every installation, none starts as
// shipped), and a run without its NATS user or that user's password.
func checkRuns(file, unit, shipped string, secret func(user string) string, runs []manifestRun, users []string) []string {
	var problems []string
	for _, s := range table {
		var started, byDefault bool
		for _, r := range runs {
			if !slices.Contains(strings.Split(r.args["services"], ","), s.name) {
				continue
			}
			started = true
			byDefault = byDefault || r.byDefault
			user := s.name
			if s.name == "prober" {
				if r.args["location"] == "" {
					problems = append(problems, fmt.Sprintf("%s: %s runs prober without --location", file, r.where))
					continue
				}
				user = "prober-" + r.args["location"]
			}
			problems = append(problems, checkUser(file, r, s.name, "nats-user", "nats-password-file", user, secret(user), users)...)
			switch staff := r.args["notes-nats-user"]; {
			case staff != "":
				problems = append(problems, checkUser(file, r, s.name, "notes-nats-user", "notes-nats-password-file", staff, secret(staff), users)...)
			case s.name == "statuspage":
				// Its own user only reads.
				problems = append(problems, fmt.Sprintf("%s: %s runs statuspage without --notes-nats-user staff: staff updates posted through its admin API would be refused", file, r.where))
			}
		}
		switch {
		case !started:
			problems = append(problems, fmt.Sprintf("%s: no %s runs %s (run --services %s --nats-user %s)", file, unit, s.name, s.name, userOf(s.name)))
		case !byDefault && s.expected != nil && s.expected(&config.Config{}):
			problems = append(problems, fmt.Sprintf("%s: %s is expected of every installation, but each %s that runs it %s: it does not start as shipped", file, s.name, unit, shipped))
		}
	}
	return problems
}

// userOf is the NATS user of service name, for a message.
func userOf(name string) string {
	if name == "prober" {
		return "prober-LOCATION"
	}
	return name
}

// checkUser: r runs service as want, a user of accounts.conf, with that
// user's password, from secret, in the file its passwordFlag names.
func checkUser(file string, r manifestRun, service, userFlag, passwordFlag, want, secret string, users []string) []string {
	var problems []string
	if got := r.args[userFlag]; got != want {
		problems = append(problems, fmt.Sprintf("%s: %s runs %s with --%s %q, want %q", file, r.where, service, userFlag, got, want))
	}
	if !slices.Contains(users, want) {
		problems = append(problems, fmt.Sprintf("%s: %s runs %s as NATS user %q, which deploy/nats/accounts.conf does not define", file, r.where, service, want))
	}
	pw := r.args[passwordFlag]
	if pw == "" {
		return append(problems, fmt.Sprintf("%s: %s runs %s without --%s", file, r.where, service, passwordFlag))
	}
	src, ok := r.secrets[pw]
	if dir, whole := r.secretDirs[path.Dir(pw)]; !ok && whole {
		src, ok = dir+"/"+path.Base(pw), true
	}
	if !ok {
		return append(problems, fmt.Sprintf("%s: %s runs %s with --%s %s, which no secret it mounts provides", file, r.where, service, passwordFlag, pw))
	}
	if src != secret {
		problems = append(problems, fmt.Sprintf("%s: %s runs %s as %s with the password %s, want %s", file, r.where, service, want, src, secret))
	}
	return problems
}

// accountUsers reads the users that accounts.conf defines.
func accountUsers(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	user := regexp.MustCompile(`^\s*\{?\s*user:\s*([A-Za-z0-9_-]+)\s*,`)
	for line := range strings.Lines(string(data)) {
		if m := user.FindStringSubmatch(line); m != nil {
			users = append(users, m[1])
		}
	}
	if len(users) == 0 {
		t.Fatalf("%s: no users found", file)
	}
	return users
}

// runFlagsOf reads the flags of argv if it is "tocsin run": --name value
// or --name=value, one dash or two; ok is false for another command.
func runFlagsOf(argv []string) (flags map[string]string, ok bool) {
	if len(argv) > 0 && path.Base(argv[0]) == "tocsin" {
		argv = argv[1:]
	}
	if len(argv) == 0 || argv[0] != "run" {
		return nil, false
	}
	flags = map[string]string{}
	for i := 1; i < len(argv); i++ {
		name, ok := strings.CutPrefix(argv[i], "-")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			flags[n] = v
			continue
		}
		if i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "-") {
			flags[name] = argv[i+1]
			i++
		} else {
			flags[name] = "true"
		}
	}
	return flags, true
}

// composeDefault is ${NAME:-default} or ${NAME-default} in compose.yaml,
// which the shipped file reads as its default.
var composeDefault = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}`)

// composeSecret is one entry of a service's secrets: a name, or
// {source, target}.
type composeSecret struct{ Source, Target string }

func (s *composeSecret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Source = n.Value
		return nil
	}
	var long struct{ Source, Target string }
	if err := n.Decode(&long); err != nil {
		return err
	}
	*s = long
	return nil
}

// composeRuns reads the "tocsin run" processes of a compose file.
func composeRuns(file string) ([]manifestRun, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	data = composeDefault.ReplaceAll(data, []byte("$1"))
	var c struct {
		Services map[string]struct {
			Command  []string        `yaml:"command"`
			Secrets  []composeSecret `yaml:"secrets"`
			Profiles []string        `yaml:"profiles"`
			EnvFile  composeEnvFiles `yaml:"env_file"`
		} `yaml:"services"`
		Secrets map[string]struct {
			File string `yaml:"file"`
		} `yaml:"secrets"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var runs []manifestRun
	for name, svc := range c.Services {
		args, ok := runFlagsOf(svc.Command)
		if !ok {
			continue
		}
		r := manifestRun{where: "service " + name, args: args, secrets: map[string]string{}, byDefault: len(svc.Profiles) == 0,
			envs: map[string]bool{}}
		for _, f := range svc.EnvFile {
			r.envs[f.Path] = f.Required != nil && !*f.Required
		}
		for _, s := range svc.Secrets {
			target := cmp.Or(s.Target, s.Source)
			if !strings.HasPrefix(target, "/") {
				target = "/run/secrets/" + target
			}
			if top, ok := c.Secrets[s.Source]; ok {
				r.secrets[target] = top.File
			}
		}
		runs = append(runs, r)
	}
	return runs, nil
}

// k8sDoc is what the test reads of a Kubernetes object.
type k8sDoc struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					EnvFrom []struct {
						SecretRef *k8sSecretRef `yaml:"secretRef"`
					} `yaml:"envFrom"`
					Env []struct {
						ValueFrom *struct {
							SecretKeyRef *k8sSecretRef `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						SubPath   string `yaml:"subPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// k8sRuns reads the "tocsin run" containers of every Deployment in dir's
// manifests, and checks that kustomization.yaml lists only files there are.
func k8sRuns(dir string) ([]manifestRun, error) {
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, &kust); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join(dir, r)); err != nil {
			return nil, fmt.Errorf("kustomization.yaml lists %s: %w", r, err)
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var runs []manifestRun
	for _, file := range files {
		base := filepath.Base(file)
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var d k8sDoc
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", base, err)
			}
			if d.Kind != "Deployment" {
				continue
			}
			pod := d.Spec.Template.Spec
			for _, c := range pod.Containers {
				args, ok := runFlagsOf(append(slices.Clone(c.Command), c.Args...))
				if !ok {
					continue
				}
				r := manifestRun{where: base + ": Deployment " + d.Metadata.Name, args: args, secrets: map[string]string{}, secretDirs: map[string]string{},
					byDefault: slices.Contains(kust.Resources, base), envs: map[string]bool{}}
				for _, e := range c.EnvFrom {
					if e.SecretRef != nil {
						r.envs[e.SecretRef.Name] = e.SecretRef.Optional
					}
				}
				for _, e := range c.Env {
					if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
						r.envs[e.ValueFrom.SecretKeyRef.Name] = e.ValueFrom.SecretKeyRef.Optional
					}
				}
				for _, m := range c.VolumeMounts {
					for _, v := range pod.Volumes {
						if v.Name != m.Name || v.Secret == nil {
							continue
						}
						switch {
						case len(v.Secret.Items) == 0 && m.SubPath == "":
							r.secretDirs[m.MountPath] = v.Secret.SecretName
						case len(v.Secret.Items) == 0:
							r.secrets[m.MountPath] = v.Secret.SecretName + "/" + m.SubPath
						}
						for _, it := range v.Secret.Items {
							if m.SubPath == "" {
								r.secrets[path.Join(m.MountPath, it.Path)] = v.Secret.SecretName + "/" + it.Key
							} else if m.SubPath == it.Path {
								r.secrets[m.MountPath] = v.Secret.SecretName + "/" + it.Key
							}
						}
					}
				}
				runs = append(runs, r)
			}
		}
	}
	return runs, nil
}

// systemdRuns is each instance of the template units in dir that runs
// tocsin: tocsin@NAME for every service of the table but the prober, and NAME@LOCATION
// for the other templates, at each of locations. A unit's password is the
// credential it loads as nats-password.
func systemdRuns(dir string, locations []string) ([]manifestRun, error) {
	units, err := filepath.Glob(filepath.Join(dir, "*@.service"))
	if err != nil || len(units) == 0 {
		return nil, cmp.Or(err, fmt.Errorf("%s: no template units", dir))
	}
	var runs []manifestRun
	for _, unit := range units {
		data, err := os.ReadFile(unit)
		if err != nil {
			return nil, err
		}
		// Continued lines joined, so that ExecStart is one line.
		text := strings.ReplaceAll(string(data), "\\\n", " ")
		instances := locations
		if filepath.Base(unit) == "tocsin@.service" {
			// Every service but the prober, which runs as its location's
			// user from a template of its own.
			instances = slices.DeleteFunc(slices.Clone(services), func(s string) bool { return s == "prober" })
		}
		for _, inst := range instances {
			name := strings.Replace(filepath.Base(unit), "@", "@"+inst, 1)
			r := manifestRun{where: filepath.Base(unit) + ": " + name,
				secrets: map[string]string{}, byDefault: true, envs: map[string]bool{}}
			// The instance's drop-ins, read after the unit as systemd does.
			all := text
			dropIns, _ := filepath.Glob(filepath.Join(dir, name+".d", "*.conf"))
			for _, d := range dropIns {
				b, err := os.ReadFile(d)
				if err != nil {
					return nil, err
				}
				all += "\n" + strings.ReplaceAll(string(b), "\\\n", " ")
			}
			for line := range strings.Lines(strings.ReplaceAll(all, "%i", inst)) {
				key, value, _ := strings.Cut(strings.TrimSpace(line), "=")
				switch {
				case key == "ExecStart" && value == "":
					r.args = nil // a drop-in resets it
				case key == "ExecStart":
					flags, ok := runFlagsOf(strings.Fields(strings.TrimPrefix(value, "/usr/local/bin/")))
					if !ok {
						return nil, fmt.Errorf("%s: ExecStart is not tocsin run: %s", unit, value)
					}
					r.args = flags
				case key == "LoadCredential":
					cred, from, _ := strings.Cut(value, ":")
					r.secrets["${CREDENTIALS_DIRECTORY}/"+cred] = from
				case key == "EnvironmentFile":
					from, optional := strings.CutPrefix(value, "-")
					r.envs[from] = optional
				}
			}
			if r.args == nil {
				return nil, fmt.Errorf("%s: no ExecStart", unit)
			}
			runs = append(runs, r)
		}
	}
	return runs, nil
}
