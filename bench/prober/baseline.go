package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
)

// baseline runs bare HTTP checks at the fleet's rate, with nothing of
// Tocsin around them (benchkit.Floor): its CPU per 1,000 checks is the
// floor on this machine that no prober can go under.
func baseline(ctx context.Context, o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	web, addrs, err := benchkit.StartHTTP(o.listeners)
	if err != nil {
		return err
	}
	defer web.Stop()
	rate := float64(o.servers) / o.interval.Seconds()
	fmt.Fprintf(out, "baseline: bare HTTP checks at %.1f/s; warming up for %s\n", rate, o.warmup)
	r := benchkit.Floor(ctx, benchkit.FloorOptions{
		Addrs: addrs, Servers: o.servers, Rate: rate, Timeout: o.timeout,
		Concurrency: o.concurrency, Warmup: o.warmup, Window: o.window,
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(out, "baseline: %d checks in %s (%.1f/s), %d failed; CPU %.2f s = %.3f CPU-s per 1,000 checks (kernel %.2f s)\n",
		r.Done, r.Elapsed.Round(time.Second), float64(r.Done)/r.Elapsed.Seconds(), r.Failed, r.CPU.Seconds(), r.PerThousand(), r.Sys.Seconds())
	return nil
}
