package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// baseline runs bare HTTP checks at the fleet's rate, with nothing of
// Tocsin around them: a new connection, a GET, some of the body read, the
// connection closed, as a check does. Its CPU per 1,000 checks is the floor
// on this machine that no prober can go under.
func baseline(ctx context.Context, o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	web, line, err := startChild("-serve", "-listeners", fmt.Sprint(o.listeners))
	if err != nil {
		return fmt.Errorf("start the HTTP servers: %w", err)
	}
	defer web.stop()
	addrs := strings.Fields(line)
	client := &http.Client{Transport: &http.Transport{
		Proxy: nil, DialContext: (&net.Dialer{}).DialContext, DisableKeepAlives: true,
	}}
	rate := float64(o.servers) / o.interval.Seconds()
	every := time.Duration(float64(time.Second) / rate)
	checkOnce := func(i int) bool {
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, fmt.Sprintf("http://%s/%s", addrs[i%len(addrs)], serverID(i)), nil)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return err == nil && resp.StatusCode < 400
	}
	var mu sync.Mutex
	done, failed := 0, 0
	sem := make(chan struct{}, o.concurrency)
	var wg sync.WaitGroup
	runFor := func(d time.Duration) {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			<-t.C
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				ok := checkOnce(i)
				mu.Lock()
				done++
				if !ok {
					failed++
				}
				mu.Unlock()
			})
		}
	}
	fmt.Fprintf(out, "baseline: bare HTTP checks at %.1f/s; warming up for %s\n", rate, o.warmup)
	runFor(o.warmup)
	mu.Lock()
	done, failed = 0, 0
	mu.Unlock()
	u0, s0 := cpuSelf()
	start := time.Now()
	runFor(o.window)
	wg.Wait()
	u1, s1 := cpuSelf()
	elapsed := time.Since(start)
	cpu := (u1 - u0) + (s1 - s0)
	fmt.Fprintf(out, "baseline: %d checks in %s (%.1f/s), %d failed; CPU %.2f s = %.3f CPU-s per 1,000 checks (kernel %.2f s)\n",
		done, elapsed.Round(time.Second), float64(done)/elapsed.Seconds(), failed, cpu.Seconds(), cpu.Seconds()*1000/float64(max(done, 1)), (s1 - s0).Seconds())
	return nil
}
