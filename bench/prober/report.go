package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// The goals the prober is held to (docs/benchmarks.md).
const (
	goalCPUPer1k   = 0.3       // CPU-seconds per 1,000 checks
	goalShare      = 0.25      // of the machine's CPU, at goalServers
	goalRSS        = 500 << 20 // bytes, at goalServers
	goalServers    = 100000
	bytesPerMB     = 1 << 20
	checksPerBatch = 1000
)

// measurement is what one window measured.
type measurement struct {
	servers          int
	interval, window time.Duration
	elapsed          time.Duration // the window as it ran
	cpus             int

	cpu, sys, gcCPU     time.Duration // this process: the prober, and the embedded server unless natsCPU is set
	rss, rssMax, hwm    int64         // VmRSS at the end, its highest sample in the window, VmHWM
	heapLive            int64
	hwmStart            int64         // VmHWM as the window opened: the peak of start-up
	natsCPU             time.Duration // the JetStream server in its own process, with -nats-process
	natsRSS, natsRSSMax int64
	natsHWM             int64
	webCPU              time.Duration // the HTTP servers' process, for reference
	timeWait            int
	backlogStart        uint64
	backlogEnd          uint64
	due                 int // checks due in the window
	tallied
}

func (m *measurement) print(w io.Writer, o options) {
	secs := m.elapsed.Seconds()
	duePerSec := float64(m.servers) / m.interval.Seconds()
	rate := float64(m.started) / secs
	cpu := m.cpu + m.natsCPU
	per1k := cpu.Seconds() / float64(max(m.started, 1)) * checksPerBatch
	share := cpu.Seconds() / (secs * float64(m.cpus))
	rss, rssMax, hwm := m.rss+m.natsRSS, m.rssMax+m.natsRSSMax, m.hwm+m.natsHWM
	missed := m.due - m.ran

	fmt.Fprintf(w, "\n%d servers every %s, window %s, %d CPUs, concurrency %d\n", m.servers, m.interval, m.elapsed.Round(time.Second), m.cpus, o.concurrency)
	fmt.Fprintf(w, "checks due:      %.1f/s; %d due in the window, %d of them ran, %d missed\n", duePerSec, m.due, m.ran, missed)
	fmt.Fprintf(w, "checks started:  %.1f/s (%d in the window), %d failed\n", rate, m.started, m.failed)
	for _, r := range slices.Sorted(maps.Keys(m.reasons)) {
		fmt.Fprintf(w, "  failed %d× %s\n", m.reasons[r], r)
	}
	fmt.Fprintf(w, "lateness:        p50 %s, p99 %s, max %s (started minus due)\n", ms(m.p50), ms(m.p99), ms(m.max))
	fmt.Fprintf(w, "CPU:             %.2f s = %.3f CPU-s per 1,000 checks, %.1f%% of the machine\n", cpu.Seconds(), per1k, 100*share)
	fmt.Fprintf(w, "  in the kernel %.2f s of it\n", m.sys.Seconds())
	fmt.Fprintf(w, "  Go GC (estimated by the runtime) %.2f s of it\n", m.gcCPU.Seconds())
	fmt.Fprintf(w, "  decoding results in the counting consumer %.2f s of it (wall time, an upper bound)\n", m.decoding.Seconds())
	if o.natsProcess {
		fmt.Fprintf(w, "  prober %.2f s (%.3f per 1,000), JetStream server %.2f s (%.3f per 1,000)\n",
			m.cpu.Seconds(), m.cpu.Seconds()/float64(max(m.started, 1))*checksPerBatch,
			m.natsCPU.Seconds(), m.natsCPU.Seconds()/float64(max(m.started, 1))*checksPerBatch)
	}
	fmt.Fprintf(w, "memory:          RSS %s at the end, %s highest in the window, %s peak since start (VmHWM); %s per 1,000 servers\n",
		mb(rss), mb(rssMax), mb(hwm), mb(rss*1000/int64(m.servers)))
	fmt.Fprintf(w, "  Go live heap %s; this process's peak before the window (config, start-up burst) %s\n", mb(m.heapLive), mb(m.hwmStart))
	if o.natsProcess {
		fmt.Fprintf(w, "  prober RSS %s (peak %s), JetStream server RSS %s (peak %s)\n", mb(m.rss), mb(m.hwm), mb(m.natsRSS), mb(m.natsHWM))
	}
	fmt.Fprintf(w, "backlog:         %d windows and tasks at the start of the window, %d at its end\n", m.backlogStart, m.backlogEnd)
	fmt.Fprintf(w, "HTTP servers:    %.2f CPU-s in their own process, not counted above\n", m.webCPU.Seconds())
	fmt.Fprintf(w, "TIME_WAIT:       %d sockets at the end of the window\n", m.timeWait)
	if m.backlogStart > uint64(4*o.concurrency) {
		fmt.Fprintf(w, "WARNING: %d windows and tasks were waiting when the window opened: the start-up burst was not done; use a longer -warmup\n", m.backlogStart)
	}
	if m.early > 0 {
		fmt.Fprintf(w, "WARNING: %d checks started before they were due: offset and due in tally.go no longer match the scheduler's\n", m.early)
	}
	if m.twice > 0 || m.bad > 0 {
		fmt.Fprintf(w, "WARNING: %d slots checked twice, %d results not understood\n", m.twice, m.bad)
	}

	fmt.Fprintf(w, "\ngoals: %s CPU-s per 1,000 checks ≤ %.1f", verdict(per1k <= goalCPUPer1k), goalCPUPer1k)
	if m.servers >= goalServers {
		fmt.Fprintf(w, "; %s CPU ≤ %.0f%% of the machine; %s RSS ≤ %d MB (highest in the window)",
			verdict(share <= goalShare), 100*goalShare, verdict(rssMax <= goalRSS), goalRSS/bytesPerMB)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "\n| servers | interval | window | due/s | checks/s | CPU-s per 1,000 checks | CPU share | RSS end (max) | peak RSS | RSS per 1,000 servers | lateness p50 / p99 / max | failed / missed |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| %d | %s | %s | %.1f | %.1f | %.3f | %.1f%% | %s (%s) | %s | %s | %s / %s / %s | %d / %d |\n",
		m.servers, short(m.interval), short(m.elapsed.Round(time.Second)), duePerSec, rate, per1k, 100*share,
		mb(rss), mb(rssMax), mb(hwm), mb(rss*1000/int64(m.servers)), ms(m.p50), ms(m.p99), ms(m.max), m.failed, missed)
	if o.natsProcess {
		fmt.Fprintln(w, "\n| servers | prober CPU-s per 1,000 | JetStream CPU-s per 1,000 | prober RSS (peak) | JetStream RSS (peak) |")
		fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
		fmt.Fprintf(w, "| %d | %.3f | %.3f | %s (%s) | %s (%s) |\n", m.servers,
			m.cpu.Seconds()/float64(max(m.started, 1))*checksPerBatch, m.natsCPU.Seconds()/float64(max(m.started, 1))*checksPerBatch,
			mb(m.rss), mb(m.hwm), mb(m.natsRSS), mb(m.natsHWM))
	}
}

func verdict(ok bool) string {
	if ok {
		return "MET"
	}
	return "MISSED"
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/bytesPerMB) }

func ms(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(100 * time.Millisecond).String()
}

// short drops a duration's zero units: 5m rather than 5m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
