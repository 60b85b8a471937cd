package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

func cmdValidate(args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "tocsin.yaml", "the configuration file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, code := loadConfig(*path, stderr, env)
	if cfg == nil {
		return code
	}
	servers := 0
	for _, b := range cfg.Boxes {
		servers += len(b.Servers)
	}
	fmt.Fprintf(stdout, "%s: ok: %d boxes, %d servers, %d locations, %d staff\n", *path, len(cfg.Boxes), servers, len(cfg.Locations), len(cfg.Staff))
	// What is legal but would leave an outage untold for a while: a gap
	// in a rotation in the week ahead. Said, not refused.
	for _, w := range cfg.Warnings(time.Now()) {
		fmt.Fprintln(stderr, w)
	}
	return 0
}

// loadConfig loads and validates, reading every secret, printing every
// problem as file:line.
func loadConfig(path string, stderr io.Writer, env func(string) (string, bool)) (*config.Config, int) {
	cfg, err := config.Load(path, env)
	return reportConfig(path, cfg, err, stderr)
}

// loadConfigFor is loadConfig for a process running services: it reads only
// the secrets they use (none for a command that runs no service).
func loadConfigFor(path string, services []string, stderr io.Writer, env func(string) (string, bool)) (*config.Config, int) {
	cfg, err := config.LoadFor(path, env, services)
	return reportConfig(path, cfg, err, stderr)
}

func reportConfig(path string, cfg *config.Config, err error, stderr io.Writer) (*config.Config, int) {
	var problems config.Problems
	switch {
	case errors.As(err, &problems):
		fmt.Fprintln(stderr, problems.Error())
		fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(problems), path)
		return nil, 1
	case err != nil:
		fmt.Fprintf(stderr, "tocsin: %v\n", err)
		return nil, 1
	}
	return cfg, 0
}
