package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// cmdSetup creates or updates every stream and bucket, once, as a user
// allowed to: the services' own users on a cluster may only use them.
func cmdSetup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", "nats://127.0.0.1:4222", "URL of the NATS JetStream server or cluster")
	replicas := fs.Int("replicas", 1, "copies of each stream to keep: 3 on a three-node cluster")
	configFile := fs.String("config", "", "the configuration file, whose bus section (max_store, max_memory) sizes the streams; without it, the default sizes")
	var nf natsFlags
	nf.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tocsin setup: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *replicas < 1 || *replicas > 5 {
		fmt.Fprintf(stderr, "tocsin setup: --replicas %d: JetStream keeps 1 to 5 copies\n", *replicas)
		return 2
	}
	limits := bus.Limits{} // the defaults
	if *configFile != "" {
		b, err := config.LoadBus(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "tocsin setup: %v\n", err)
			return 1
		}
		limits = bus.Limits{MaxStore: int64(b.MaxStore), MaxMemory: int64(b.MaxMemory)}
	}
	natsOpts, err := nf.options()
	if err != nil {
		fmt.Fprintf(stderr, "tocsin setup: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := dial(*natsURL, "tocsin setup", natsOpts...)
	if err != nil {
		fmt.Fprintf(stderr, "tocsin setup: %v\n", err)
		return 1
	}
	defer b.Close()
	b.Limits = limits
	if err := b.Setup(ctx, *replicas); err != nil {
		fmt.Fprintf(stderr, "tocsin setup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%d streams and %d buckets ready, %d replicas each\n", len(events.StreamConfigs(1)), len(events.BucketConfigs(1)), *replicas)
	return 0
}
