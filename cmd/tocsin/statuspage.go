package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/tocsin-alarm/tocsin/services/statuspage"
)

// cmdStatuspage exports the status page as static files, for any static
// host: a copy that stays up when nothing else does.
func cmdStatuspage(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 || args[0] != "export" {
		fmt.Fprintln(stderr, "usage: tocsin statuspage export [--config FILE] [--nats URL] DIR")
		return 2
	}
	fs := flag.NewFlagSet("statuspage export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "tocsin.yaml", "the configuration file")
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS server Tocsin runs on")
	settle := fs.Duration("settle", 3*time.Second, "how long to read the state before writing it out")
	var nf natsFlags
	nf.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin statuspage export: %v\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "tocsin statuspage export: give the directory to write into")
		return 2
	}
	cfg, code := loadConfigFor(*cfgPath, []string{"statuspage"}, stderr, env)
	if cfg == nil {
		return code
	}
	b, err := dial(*natsURL, "tocsin statuspage export", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin statuspage export: %v\n", err)
		return 1
	}
	defer b.Close()
	sp := statuspage.New(cfg, statuspage.Deps{Bus: b, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := sp.Export(ctx, fs.Arg(0), *settle); err != nil {
		fmt.Fprintf(stderr, "tocsin statuspage export: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "status page written to %s\n", fs.Arg(0))
	return 0
}
