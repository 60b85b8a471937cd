package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
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
	// The incident may come before or after the flags.
	rest := args[1:]
	var incident string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		incident, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	if incident == "" && fs.NArg() == 1 {
		incident = fs.Arg(0)
	}
	if incident == "" || strings.TrimSpace(*message) == "" {
		fmt.Fprintln(stderr, "tocsin incident update: give the incident and --message")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := dial(*natsURL, "tocsin incident")
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	defer b.Close()
	id, err := findIncident(ctx, b, strings.ToLower(incident))
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	seq, err := nextNote(ctx, b, id)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	n := &events.IncidentNote{Incident: id, Seq: seq, Status: *status, Message: strings.TrimSpace(*message), By: *by, At: now().UTC()}
	if err := n.Validate(); err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 2
	}
	if err := b.Publish(ctx, events.New(fmt.Sprintf("%s/note/%d", id, seq), "tocsin", n.At, n)); err != nil {
		fmt.Fprintf(stderr, "tocsin incident update: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "update %d to incident %s posted (%s)\n", seq, id, *status)
	return 0
}

// nextNote numbers an incident's notes, so that two people posting at once
// get two numbers and a retried post keeps its own.
func nextNote(ctx context.Context, b *bus.Bus, incident string) (int64, error) {
	kv, err := b.KV(ctx, events.BucketIncidents)
	if err != nil {
		return 0, err
	}
	key := "notes." + incident
	for range 10 {
		var n int64
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = kv.Create(ctx, key, []byte("1"))
			n = 1
		case err != nil:
			return 0, err
		default:
			n, _ = strconv.ParseInt(string(e.Value()), 10, 64)
			n++
			_, err = kv.Update(ctx, key, []byte(strconv.FormatInt(n, 10)), e.Revision())
		}
		if err == nil {
			return n, nil
		}
		if !bus.IsConflict(err) {
			return 0, err
		}
	}
	return 0, errors.New("too many updates at once; try again")
}
