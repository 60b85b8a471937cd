package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/affected"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
)

// cmdAffected tells support staff whether a customer's site or mail is
// served by a box in trouble, from the DNS as the world sees it and the
// state Tocsin keeps.
func cmdAffected(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool), now func() time.Time) int {
	fs := flag.NewFlagSet("affected", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "tocsin.yaml", "the configuration file")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	var nf natsFlags
	nf.register(fs)
	resolver := fs.String("resolver", "", "DNS server to ask, host:port (default: the first of /etc/resolv.conf)")
	asJSON := fs.Bool("json", false, "answer in JSON, for scripts")
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if name == "" && fs.NArg() == 1 {
		name = fs.Arg(0)
	} else if fs.NArg() != 0 || name == "" {
		fmt.Fprintln(stderr, "usage: tocsin affected HOST-OR-DOMAIN [--config FILE] [--nats URL] [--resolver ADDR] [--json]")
		return 2
	}
	cfg, code := loadConfigFor(*cfgPath, nil, stderr, env)
	if cfg == nil {
		return code
	}
	r := &affected.Resolver{Addr: *resolver}
	if r.Addr == "" {
		var err error
		if r, err = affected.SystemResolver(); err != nil {
			fmt.Fprintf(stderr, "tocsin affected: %v; give one with --resolver\n", err)
			return 1
		}
	} else if _, _, err := net.SplitHostPort(r.Addr); err != nil {
		r.Addr = net.JoinHostPort(strings.Trim(r.Addr, "[]"), "53") // the port DNS uses unless told
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin affected: %v\n", err)
		return 2
	}
	b, err := dial(*natsURL, "tocsin affected", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin affected: %v\n", err)
		return 1
	}
	defer b.Close()
	st, err := fleetstate.Load(ctx, b, now())
	if err != nil {
		fmt.Fprintf(stderr, "tocsin affected: %v\n", err)
		return 1
	}
	a, err := affected.Check(ctx, r, cfg, name, st)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin affected: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(a); err != nil {
			fmt.Fprintf(stderr, "tocsin affected: %v\n", err)
			return 1
		}
		return 0
	}
	writeAffected(stdout, a, st.AsOf)
	return 0
}

// writeAffected prints the answer: the sentences first, then what is
// known of each server matched.
func writeAffected(w io.Writer, a *affected.Answer, now time.Time) {
	for _, s := range a.Summary {
		fmt.Fprintln(w, s)
	}
	if len(a.Matches) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FOR\tSERVER\tBOX\tSTATE\tBOX STATE\tINCIDENT")
	for _, m := range a.Matches {
		inc := "-"
		if m.Incident != nil {
			inc = fmt.Sprintf("%s since %s", m.Incident.ID, fleetstate.Since(m.Incident.Since, now))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Kind, clip(m.Server, 12), clip(m.BoxName, 16), m.State, m.BoxState, inc)
	}
	_ = tw.Flush()
}
