// Command statuspage measures what the public status page serves on this
// machine. It runs the status page service against an embedded JetStream
// server holding the state of a generated fleet (servers in boxes of two
// and three with roles, a few incidents, maintenance windows, a banner),
// and measures two things:
//
//   - how many /api/v2/summary.json requests per second it answers to N
//     keep-alive clients, which run in a child process (this program run
//     again with -load) so that their CPU is counted apart;
//   - how quickly one change of a server's state in the bucket reaches a
//     thousand browsers following /events, each timed from the write.
//
// Each is run on its own:
//
//	go run ./bench/statuspage -measure summary -servers 1000 -duration 10s
//	go run ./bench/statuspage -measure events -sse 1000
//
// docs/benchmarks.md explains the figures and keeps the results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/services/statuspage"
)

type options struct {
	servers    int
	measure    string // summary, events or all
	path       string
	clients    int
	gzip       bool
	duration   time.Duration
	warmup     time.Duration
	sse        int
	cpuProfile string
}

// maxDuration bounds -duration: every request's latency is kept.
const maxDuration = 5 * time.Minute

func main() {
	var o options
	flag.IntVar(&o.servers, "servers", 1000, "servers in the fleet, in boxes of two and three")
	flag.StringVar(&o.measure, "measure", "all", "what to measure: summary (requests per second), events (a change to SSE clients), or all, one after the other")
	flag.StringVar(&o.path, "path", "/api/v2/summary.json", "the document the load generator asks for")
	flag.IntVar(&o.clients, "clients", 64, "concurrent keep-alive clients of the load generator")
	flag.BoolVar(&o.gzip, "gzip", false, "the load generator accepts gzip, as browsers do (it counts the bytes as sent, without unzipping them)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure requests per second (at most 5m)")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "how long the load generator runs before measuring")
	flag.IntVar(&o.sse, "sse", 1000, "SSE clients of /events that wait for the change")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the status page's process during the requests-per-second window to this file")
	loadURL := flag.String("load", "", "internal: generate load on this URL for the parent process")
	flag.Parse()

	var err error
	if *loadURL != "" {
		err = generate(*loadURL, o.clients, o.gzip, o.warmup, o.duration, os.Stdout)
	} else {
		err = benchkit.Interruptible(func(ctx context.Context) error { return run(ctx, o, os.Stdout) })
	}
	benchkit.Exit("bench/statuspage", err)
}

func (o *options) check() error {
	var errs []error
	if o.servers < 30 || o.servers > 1_000_000 {
		errs = append(errs, errors.New("-servers must be between 30 and 1000000"))
	}
	if o.measure != "summary" && o.measure != "events" && o.measure != "all" {
		errs = append(errs, errors.New("-measure must be summary, events or all"))
	}
	if o.duration < time.Second || o.duration > maxDuration {
		errs = append(errs, fmt.Errorf("-duration must be between 1s and %s", maxDuration))
	}
	if o.warmup < 0 || o.clients < 1 || o.sse < 1 {
		errs = append(errs, errors.New("-warmup must not be negative, -clients and -sse at least 1"))
	}
	if !strings.HasPrefix(o.path, "/") {
		errs = append(errs, errors.New("-path must start with /"))
	}
	return errors.Join(errs...)
}

func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.measure != "summary" {
		// Each SSE client holds a socket at both ends, both in this process.
		if err := raiseFileLimit(uint64(2*o.sse + 256)); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ns, stopNATS, err := benchkit.JetStream("statuspage")
	if err != nil {
		return err
	}
	defer stopNATS()
	// The verifier's connection, which writes the state, and the page's own.
	writer, err := bus.Connect("", ns, "bench writer", log)
	if err != nil {
		return err
	}
	defer writer.Close()
	pageBus, err := bus.Connect("", ns, "bench statuspage", log)
	if err != nil {
		return err
	}
	defer pageBus.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = writer.Ensure(sctx, 1)
	cancel()
	if err != nil {
		return err
	}

	f := newFleet(o.servers)
	cfg, err := config.Parse("bench.yaml", f.yaml(), func(string) (string, bool) { return "", false })
	if err != nil {
		return fmt.Errorf("the generated config: %w", err)
	}
	t0 := time.Now()
	want, err := f.write(ctx, writer, time.Now().UTC())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fleet: %d servers in %d boxes of 2–3 with %d roles; state written in %s\n",
		o.servers, len(f.boxes), len(roles), time.Since(t0).Round(time.Millisecond))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	page := statuspage.New(cfg, statuspage.Deps{Bus: pageBus, Log: log}, statuspage.WithListener(ln))
	pctx, stopPage := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- page.Run(pctx) }()
	defer func() {
		stopPage()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "bench/statuspage: the status page:", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	t0 = time.Now()
	size, err := waitForState(ctx, base, want)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "the page at %s showed the whole state %s after it started; summary.json is %d bytes\n", base, time.Since(t0).Round(time.Millisecond), size)

	if o.measure != "events" {
		if err := measureRequests(ctx, o, base, out); err != nil {
			return err
		}
	}
	if o.measure != "summary" {
		if err := measureEvents(ctx, o, base, writer, f, out); err != nil {
			return err
		}
	}
	return nil
}

// summary is what the benchmark reads of summary.json.
type summary struct {
	Components []struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Status    string `json:"status"`
		UpdatedAt string `json:"updated_at"`
		Group     bool   `json:"group"`
	} `json:"components"`
	Incidents             []json.RawMessage `json:"incidents"`
	ScheduledMaintenances []json.RawMessage `json:"scheduled_maintenances"`
	Status                struct {
		Indicator string `json:"indicator"`
	} `json:"status"`
}

func getSummary(ctx context.Context, base string) (*summary, int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v2/summary.json", nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET summary.json: %s", resp.Status)
	}
	var s summary
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, 0, fmt.Errorf("summary.json: %w", err)
	}
	return &s, len(body), nil
}

// waitForState waits until summary.json shows everything written: every
// server with a known state has a date, the open incident, the maintenance
// windows and the overall status. It returns the document's size.
func waitForState(ctx context.Context, base string, want expected) (int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for {
		s, size, err := getSummary(ctx, base)
		if err == nil {
			dated := 0
			for _, c := range s.Components {
				if !c.Group && !strings.HasPrefix(c.UpdatedAt, "1970") {
					dated++
				}
			}
			if dated == want.dated && len(s.Incidents) == want.incidents && len(s.ScheduledMaintenances) == want.maintenance && s.Status.Indicator == want.indicator {
				return size, nil
			}
			last = fmt.Sprintf("%d of %d servers dated, %d incidents of %d, %d maintenance windows of %d, status %q",
				dated, want.dated, len(s.Incidents), want.incidents, len(s.ScheduledMaintenances), want.maintenance, s.Status.Indicator)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the page did not show the state written within 2 minutes: %s", last)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// raiseFileLimit raises the soft limit on open files to at least need, up
// to the hard limit.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the limit on open files: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("%d SSE clients need %d open files and the hard limit is %d: raise it (ulimit -Hn, as root) or use fewer -sse", (need-256)/2, need, lim.Max)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the limit on open files to %d: %w", need, err)
	}
	return nil
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
