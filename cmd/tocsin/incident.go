package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// cmdIncident posts a staff update to an incident: the status page shows
// it, the datacentre's ticket thread gets it, and once the incident is
// public it goes to X and Facebook.
func cmdIncident(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int {
	if len(args) == 0 || args[0] != "update" {
		fmt.Fprintln(stderr, `usage: tocsin incident update INCIDENT --status investigating|identified|monitoring|resolved --message "…"`)
		return 2
	}
	fs := flag.NewFlagSet("incident update", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	by := fs.String("by", whoami(env), "who writes it")
	status := fs.String("status", events.NoteInvestigating, "investigating, identified, monitoring or resolved")
	message := fs.String("message", "", "the update, as customers will read it")
	var nf natsFlags
	nf.register(fs)
	// The incident may come before or after the flags.
	rest := args[1:]
	var arg string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		arg, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if arg == "" && fs.NArg() == 1 {
		arg = fs.Arg(0)
	}
	if arg == "" || strings.TrimSpace(*message) == "" {
		fmt.Fprintln(stderr, "tocsin incident update: give the incident and --message")
		return 2
	}
	switch *status {
	case events.NoteInvestigating, events.NoteIdentified, events.NoteMonitoring, events.NoteResolved:
	default:
		fmt.Fprintf(stderr, "tocsin incident update: unknown status %q: investigating, identified, monitoring or resolved\n", *status)
		return 2
	}
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := dial(*natsURL, "tocsin incident", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	defer b.Close()
	id, err := findIncident(ctx, b, strings.ToLower(arg))
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	n, err := incident.PostNote(ctx, b, id, *status, *message, *by, now())
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "update %d to incident %s posted (%s)\n", n.Seq, id, n.Status)
	return 0
}
