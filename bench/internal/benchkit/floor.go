package benchkit

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// FloorOptions say how bare checks are run: at Rate a second against the
// fleet at Addrs, at most Concurrency at once, each within Timeout; for
// Warmup unmeasured, then for Window measured.
type FloorOptions struct {
	Addrs       []string
	Servers     int
	Rate        float64
	Timeout     time.Duration
	Concurrency int
	Warmup      time.Duration
	Window      time.Duration
}

// FloorResult is what the measured window of Floor did and cost.
type FloorResult struct {
	Done, Failed int
	Elapsed      time.Duration
	CPU, Sys     time.Duration // this process's, Sys the kernel's part of CPU
}

// PerThousand is the CPU-seconds per 1,000 checks.
func (r FloorResult) PerThousand() float64 {
	return r.CPU.Seconds() * 1000 / float64(max(r.Done, 1))
}

// Floor runs bare HTTP checks in this process, with nothing of Tocsin around
// them: a new connection, a GET, some of the body read, the connection
// closed, as a check does. Its CPU per 1,000 checks is the floor on this
// machine that no prober can go under. It returns early, with what it has,
// when ctx ends.
func Floor(ctx context.Context, o FloorOptions) FloorResult {
	client := &http.Client{Transport: &http.Transport{
		Proxy: nil, DialContext: (&net.Dialer{}).DialContext, DisableKeepAlives: true,
	}}
	defer client.CloseIdleConnections()
	servers := max(o.Servers, 1)
	every := time.Duration(float64(time.Second) / o.Rate)
	checkOnce := func(i int) bool {
		cctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, URL(o.Addrs, i%servers), nil)
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
	sem := make(chan struct{}, max(o.Concurrency, 1))
	var wg sync.WaitGroup
	runFor := func(d time.Duration) {
		t := time.NewTicker(every)
		defer t.Stop()
		end := time.Now().Add(d)
		for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
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
	runFor(o.Warmup)
	mu.Lock()
	done, failed = 0, 0
	mu.Unlock()
	u0, s0 := CPUSelf()
	start := time.Now()
	runFor(o.Window)
	wg.Wait()
	u1, s1 := CPUSelf()
	mu.Lock()
	defer mu.Unlock()
	return FloorResult{Done: done, Failed: failed, Elapsed: time.Since(start), CPU: (u1 - u0) + (s1 - s0), Sys: s1 - s0}
}
