package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// loadResult is what the load generator reports of its window, as one
// line of JSON.
type loadResult struct {
	Elapsed   time.Duration `json:"elapsed"`
	Requests  int           `json:"requests"` // answered in full with 200 within the window
	Errors    int           `json:"errors"`   // failed, or answered with another status, within the window
	Bytes     int64         `json:"bytes"`    // of the bodies of Requests
	MinSize   int64         `json:"min_size"`
	MaxSize   int64         `json:"max_size"`
	P50       time.Duration `json:"p50"`
	P99       time.Duration `json:"p99"`
	Max       time.Duration `json:"max"`
	CPU       time.Duration `json:"cpu"` // the generator's own, within the window
	FirstErr  string        `json:"first_error,omitempty"`
	Unstopped int           `json:"unstopped,omitempty"` // clients still waiting on a request 10s after the window
}

// generate is the child's part: clients keep-alive connections asking for
// url one request after another; after warmup it prints "measuring", after
// duration "done", then its loadResult.
func generate(url string, clients int, gzip bool, warmup, duration time.Duration, out io.Writer) error {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	const (
		warming = iota
		measuring
		over
	)
	var phase atomic.Int32
	type tally struct {
		lat          []time.Duration
		errors       int
		bytes        int64
		minSize      int64
		maxSize      int64
		firstErr     string
		stillRunning atomic.Bool
	}
	tallies := make([]*tally, clients)
	var wg sync.WaitGroup
	for i := range clients {
		t := &tally{minSize: -1}
		t.stillRunning.Store(true)
		tallies[i] = t
		wg.Go(func() {
			defer t.stillRunning.Store(false)
			buf := make([]byte, 64<<10)
			for phase.Load() != over {
				start := time.Now()
				n, err := get(client, url, gzip, buf)
				took := time.Since(start)
				if phase.Load() != measuring {
					if err != nil {
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				if err != nil {
					t.errors++
					if t.firstErr == "" {
						t.firstErr = err.Error()
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				t.lat = append(t.lat, took)
				t.bytes += n
				if t.minSize < 0 || n < t.minSize {
					t.minSize = n
				}
				t.maxSize = max(t.maxSize, n)
			}
		})
	}
	time.Sleep(warmup)
	cpu0 := cpuSelf()
	phase.Store(measuring)
	from := time.Now()
	fmt.Fprintln(out, "measuring")
	time.Sleep(duration)
	phase.Store(over)
	r := loadResult{Elapsed: time.Since(from), CPU: cpuSelf() - cpu0}
	fmt.Fprintln(out, "done")
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
	}
	// Late clients are counted as unstopped and their tallies left out.
	var lat []time.Duration
	r.MinSize = -1
	for _, t := range tallies {
		if t.stillRunning.Load() {
			r.Unstopped++
			continue
		}
		lat = append(lat, t.lat...)
		r.Errors += t.errors
		r.Bytes += t.bytes
		if t.minSize >= 0 && (r.MinSize < 0 || t.minSize < r.MinSize) {
			r.MinSize = t.minSize
		}
		r.MaxSize = max(r.MaxSize, t.maxSize)
		if r.FirstErr == "" {
			r.FirstErr = t.firstErr
		}
	}
	r.Requests = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99, r.Max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	return json.NewEncoder(out).Encode(r)
}

// get asks for url and reads the whole body, which it returns the length
// of as sent.
func get(client *http.Client, url string, gzip bool, buf []byte) (int64, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err
	}
	if gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
	if err != nil {
		return n, err
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("status %s", resp.Status)
	}
	return n, nil
}

// measureRequests runs the load generator in a child process against the
// page and reports its figures, and the CPU of both processes.
func measureRequests(ctx context.Context, o options, base string, out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "-load", base+o.path, "-clients", fmt.Sprint(o.clients), "-gzip="+fmt.Sprint(o.gzip),
		"-warmup", o.warmup.String(), "-duration", o.duration.String())
	cmd.Stderr = os.Stderr
	// Killed with this process, should it be killed first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(within time.Duration, want string) (string, error) {
		select {
		case l, ok := <-lines:
			if !ok {
				return "", fmt.Errorf("the load generator ended before saying %q", want)
			}
			return l, nil
		case <-time.After(within):
			return "", fmt.Errorf("the load generator did not say %q within %s", want, within)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	accept := ""
	if o.gzip {
		accept = ", accepting gzip"
	}
	fmt.Fprintf(out, "\nload: %d keep-alive clients in a child process asking for %s%s, warm-up %s, window %s\n", o.clients, o.path, accept, o.warmup, o.duration)
	if _, err := next(o.warmup+30*time.Second, "measuring"); err != nil {
		return err
	}
	var prof *os.File
	if o.cpuProfile != "" {
		if prof, err = os.Create(o.cpuProfile); err != nil {
			return err
		}
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return err
		}
	}
	cpu0 := cpuSelf()
	if _, err := next(o.duration+30*time.Second, "done"); err != nil {
		pprof.StopCPUProfile()
		return err
	}
	cpu := cpuSelf() - cpu0
	pprof.StopCPUProfile()
	line, err := next(30*time.Second, "its result")
	if err != nil {
		return err
	}
	var r loadResult
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return fmt.Errorf("the load generator's result %q: %w", line, err)
	}

	secs := r.Elapsed.Seconds()
	cpus := float64(runtime.NumCPU())
	rate := float64(r.Requests) / secs
	fmt.Fprintf(out, "requests:  %.0f/s (%d answered with 200 in %s), %d errors\n", rate, r.Requests, r.Elapsed.Round(time.Millisecond), r.Errors)
	if r.FirstErr != "" {
		fmt.Fprintf(out, "  the first error: %s\n", r.FirstErr)
	}
	if r.Unstopped > 0 {
		fmt.Fprintf(out, "  WARNING: %d clients were still waiting 10s after the window; their requests are left out\n", r.Unstopped)
	}
	fmt.Fprintf(out, "latency:   p50 %s, p99 %s, max %s (each request, seen by its client)\n", ms(r.P50), ms(r.P99), ms(r.Max))
	fmt.Fprintf(out, "response:  %d bytes of body as sent (%d to %d), %.1f MB/s\n", r.Bytes/int64(max(r.Requests, 1)), r.MinSize, r.MaxSize, float64(r.Bytes)/secs/1e6)
	fmt.Fprintf(out, "CPU:       status page process (page and JetStream) %.2f s = %.0f%% of the machine; load generator %.2f s = %.0f%%\n",
		cpu.Seconds(), 100*cpu.Seconds()/(secs*cpus), r.CPU.Seconds(), 100*r.CPU.Seconds()/(secs*cpus))
	fmt.Fprintf(out, "           %.0f requests per CPU-second of the page's process\n", float64(r.Requests)/max(cpu.Seconds(), 1e-9))
	goal := "missed"
	if rate >= 10000 && r.Errors == 0 {
		goal = "met"
	}
	fmt.Fprintf(out, "goal:      at least 10,000 requests/s without errors: %s\n", goal)
	fmt.Fprintf(out, "| %s | %t | %d | %d | %s | %.0f | %s / %s | %d | %d B | %.0f%% / %.0f%% | %.0f |\n",
		o.path, o.gzip, o.clients, o.servers, o.duration, rate, ms(r.P50), ms(r.P99), r.Errors, r.Bytes/int64(max(r.Requests, 1)),
		100*cpu.Seconds()/(secs*cpus), 100*r.CPU.Seconds()/(secs*cpus), float64(r.Requests)/max(cpu.Seconds(), 1e-9))
	return nil
}
