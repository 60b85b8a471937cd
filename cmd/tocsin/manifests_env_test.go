package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Each service reads from its environment the secrets its part of the
// config names by NAME_env (the table of docs/configuration.md), so each
// process a manifest starts needs a source of its own for them: one that
// holds only its service's secrets, and that may be missing, since a
// config may name none.

// checkEnvs lists what is wrong with the environment sources of runs:
// a run without the source own names for a service it runs, or that
// requires it (the process would not start without it), and a source
// that is not the own of a service it runs, unless listed in shared (for
// what holds no secret).
func checkEnvs(file, kind string, own func(service string, r manifestRun) string, shared []string, runs []manifestRun) []string {
	// Whose own each source is, to name it in a message.
	owners := map[string][]string{}
	add := func(src, service string) {
		if !slices.Contains(owners[src], service) {
			owners[src] = append(owners[src], service)
		}
	}
	for _, s := range table {
		add(own(s.name, manifestRun{args: map[string]string{}}), s.name)
	}
	for _, r := range runs {
		for _, s := range strings.Split(r.args["services"], ",") {
			add(own(s, r), s)
		}
	}
	var problems []string
	for _, r := range runs {
		services := strings.Split(r.args["services"], ",")
		want := map[string]bool{}
		for _, s := range services {
			src := own(s, r)
			want[src] = true
			optional, ok := r.envs[src]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("%s: %s runs %s with no %s %s, for the secrets of %s that the config names by _env (docs/configuration.md)", file, r.where, s, kind, src, s))
			case !optional:
				problems = append(problems, fmt.Sprintf("%s: %s requires its %s %s: make it optional, since a config may name no secret of %s", file, r.where, kind, src, s))
			}
		}
		for _, src := range slices.Sorted(maps.Keys(r.envs)) {
			if want[src] || slices.Contains(shared, src) {
				continue
			}
			if o := owners[src]; len(o) > 0 {
				problems = append(problems, fmt.Sprintf("%s: %s runs %s and gets the %s %s of %s: each service gets only its own secrets", file, r.where, r.args["services"], kind, src, strings.Join(o, ", ")))
			} else {
				problems = append(problems, fmt.Sprintf("%s: %s runs %s and gets the %s %s, which is no service's own: each service gets only its own secrets, never a source shared with others", file, r.where, r.args["services"], kind, src))
			}
		}
	}
	return problems
}

// composeEnvFile is one file of a service's env_file: a path, or
// {path, required} (Compose 2.24.0 and later); required is true unless
// said.
type composeEnvFile struct {
	Path     string `yaml:"path"`
	Required *bool  `yaml:"required"`
}

// composeEnvFiles is a service's env_file: one path, or a list of paths
// and {path, required}.
type composeEnvFiles []composeEnvFile

func (fs *composeEnvFiles) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, it := range items {
		var f composeEnvFile
		if it.Kind == yaml.ScalarNode {
			f.Path = it.Value
		} else if err := it.Decode(&f); err != nil {
			return err
		}
		*fs = append(*fs, f)
	}
	return nil
}

// k8sSecretRef names a Secret a container's environment comes from.
type k8sSecretRef struct {
	Name     string `yaml:"name"`
	Optional bool   `yaml:"optional"`
}
