package main

import (
	"context"
	"io"
	"strings"
	"time"
)

// clocked is a subcommand that reads the environment and the clock: ack,
// affected, incident, maintenance, status.
type clocked func(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int

// runClocked runs cmd with args, env and the clock stopped at now, and
// returns its exit code and what it wrote to stdout and to stderr.
func runClocked(ctx context.Context, cmd clocked, env func(string) (string, bool), now time.Time, args ...string) (code int, stdout, stderr string) {
	var out, errs strings.Builder
	code = cmd(ctx, args, &out, &errs, env, func() time.Time { return now })
	return code, out.String(), errs.String()
}

// noEnv is an empty environment.
func noEnv(string) (string, bool) { return "", false }
