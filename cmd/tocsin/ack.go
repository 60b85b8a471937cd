package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier"
)

// cmdAck acknowledges an incident from the command line: the person on
// call is no longer reminded, and the escalator hears of it.
func cmdAck(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int {
	fs := flag.NewFlagSet("ack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	by := fs.String("by", whoami(env), "who takes the incident on")
	var nf natsFlags
	nf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin ack: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: tocsin ack [--by NAME] INCIDENT (the id, like 20261121-k3f9x2, or its code k3f9x2)")
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	b, err := dial(*natsURL, "tocsin ack", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin ack: %v\n", err)
		return 1
	}
	defer b.Close()
	incident, err := findIncident(ctx, b, strings.ToLower(fs.Arg(0)))
	if err != nil {
		fmt.Fprintf(stderr, "tocsin ack: %v\n", err)
		return 1
	}
	if err := notifier.Acknowledge(ctx, b.Publish, incident, *by, events.AckViaCLI, now()); err != nil {
		fmt.Fprintf(stderr, "tocsin ack: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "incident %s acknowledged by %s\n", incident, *by)
	return 0
}

// findIncident takes an incident id, or the code people read in an SMS.
func findIncident(ctx context.Context, b *bus.Bus, arg string) (string, error) {
	ikv, err := b.KV(ctx, events.BucketIncidents)
	if err != nil {
		return "", err
	}
	if !strings.Contains(arg, "-") {
		kv, err := b.KV(ctx, events.BucketDeliveries)
		if err != nil {
			return "", err
		}
		if arg, err = incidentOfCode(ctx, kv, arg); err != nil {
			return "", err
		}
	}
	if !events.ValidToken(arg) {
		return "", fmt.Errorf("%q is not an incident id", arg)
	}
	if _, err := ikv.Get(ctx, arg); errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("no incident %s", arg)
	} else if err != nil {
		return "", err
	}
	return arg, nil
}

// incidentOfCode is the incident paged with code: "not paged" only when
// the bus says so, else what went wrong, so that nobody reads a bus that
// did not answer as an incident that does not exist.
func incidentOfCode(ctx context.Context, kv jetstream.KeyValue, code string) (string, error) {
	e, err := kv.Get(ctx, "code."+code)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return "", fmt.Errorf("no incident with the code %q was paged", code)
	case err != nil:
		return "", fmt.Errorf("look up the code %q: %w", code, err)
	}
	return string(e.Value()), nil
}

// dial connects an operator command to the NATS server Tocsin runs on, with
// the options natsFlags built. A command does one thing: it gives up at once
// if the server is not there.
func dial(natsURL, name string, extra ...nats.Option) (*bus.Bus, error) {
	b, err := bus.Connect(natsURL, nil, name, slog.New(slog.NewTextHandler(io.Discard, nil)), append(bus.Once(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("%w (is tocsin running?)", err)
	}
	return b, nil
}
