package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/bench/internal/benchkit"
)

// goalRatio is the most tocsin's CPU per check may be, as a multiple of
// the bare checks' on the same machine in the same run.
const goalRatio = 1.1

// result is one run's figures.
type result struct {
	opts    options
	started time.Time
	load    string // /proc/loadavg when the run began: how busy the machine was

	// tocsin over its window
	elapsed        time.Duration
	checks, failed float64
	cpu, sys       time.Duration
	webCPU         time.Duration // the HTTP servers', not counted
	rss, hwm       int64         // at the end, and the peak since start
	rssMax, rssMin int64         // the highest and lowest samples in the window

	floor       benchkit.FloorResult
	floorWebCPU time.Duration
}

// due is the checks due per second.
func (r *result) due() float64 { return float64(r.opts.servers) / r.opts.interval.Seconds() }

func (r *result) perThousand() float64 { return r.cpu.Seconds() * 1000 / max(r.checks, 1) }

func (r *result) ratio() float64 {
	f := r.floor.PerThousand()
	if f <= 0 {
		return 0
	}
	return r.perThousand() / f
}

func (r *result) print(w io.Writer) {
	o := r.opts
	rate := r.checks / r.elapsed.Seconds()
	floorRate := float64(r.floor.Done) / r.floor.Elapsed.Seconds()
	fmt.Fprintf(w, "\n%d servers every %s, window %s, %d CPUs, load average at start %s\n", o.servers, o.interval, o.window, runtime.NumCPU(), r.load)
	fmt.Fprintf(w, "tocsin:  %.1f checks/s of %.1f due (%.0f checks, %.0f failed); CPU %.2f s (kernel %.2f s) = %.3f CPU-s per 1,000 checks, %.1f%% of the machine\n",
		rate, r.due(), r.checks, r.failed, r.cpu.Seconds(), r.sys.Seconds(), r.perThousand(), share(r.cpu, r.elapsed))
	fmt.Fprintf(w, "         RSS %s at the end, %s to %s in the window, %s peak since start\n", mb(r.rss), mb(r.rssMin), mb(r.rssMax), mb(r.hwm))
	fmt.Fprintf(w, "floor:   %.1f checks/s (%d checks, %d failed); CPU %.2f s (kernel %.2f s) = %.3f CPU-s per 1,000 checks\n",
		floorRate, r.floor.Done, r.floor.Failed, r.floor.CPU.Seconds(), r.floor.Sys.Seconds(), r.floor.PerThousand())
	fmt.Fprintf(w, "HTTP servers: %.2f CPU-s during tocsin's window, %.2f during the floor's warm-up and window, in their own process, not counted\n",
		r.webCPU.Seconds(), r.floorWebCPU.Seconds())
	verdict := "met"
	if r.ratio() == 0 || r.ratio() > goalRatio {
		verdict = "NOT met"
	}
	fmt.Fprintf(w, "ratio:   tocsin / floor = %.2f ×; goal ≤ %.1f ×: %s\n", r.ratio(), goalRatio, verdict)
	if r.checks < 0.95*r.due()*r.elapsed.Seconds() {
		fmt.Fprintln(w, "warning: tocsin did fewer than 95% of the checks due")
	}
	if r.failed > 0 || r.floor.Failed > 0 {
		fmt.Fprintln(w, "warning: checks failed against healthy servers: the machine is short of something")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| date | servers | interval | window | due/s | checks/s | tocsin CPU-s per 1,000 | floor CPU-s per 1,000 | ratio | RSS end | failed |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| %s | %d | %s | %s | %.1f | %.1f | %.3f | %.3f | %.2f × | %s | %.0f / %d |\n",
		r.started.Format(time.DateOnly), o.servers, o.interval, o.window, r.due(), rate,
		r.perThousand(), r.floor.PerThousand(), r.ratio(), mb(r.rss), r.failed, r.floor.Failed)
}

func share(cpu, elapsed time.Duration) float64 {
	return 100 * cpu.Seconds() / (elapsed.Seconds() * float64(runtime.NumCPU()))
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
