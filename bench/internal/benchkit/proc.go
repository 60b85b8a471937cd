package benchkit

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUSelf is the CPU time this process has used, in user space and in the
// kernel.
func CPUSelf() (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// userHZ is the unit of the times in /proc/<pid>/stat; 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// CPUOf is the CPU time, user and system, process pid has used; 0 if it
// cannot be read.
func CPUOf(pid string) time.Duration {
	u, s := CPUSplitOf(pid)
	return u + s
}

// CPUSplitOf is the CPU time process pid has used, in user space and in the
// kernel.
func CPUSplitOf(pid string) (user, sys time.Duration) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of proc(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	return time.Duration(utime) * time.Second / userHZ, time.Duration(stime) * time.Second / userHZ
}

// MemOf is process pid's resident memory now and at its peak, in bytes;
// pid may be "self".
func MemOf(pid string) (rss, hwm int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// TimeWait is the TCP sockets in TIME_WAIT on this host (network
// namespace), or -1 if it cannot be read.
func TimeWait() int {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "TCP:") {
			continue
		}
		f := strings.Fields(line)
		for i := 1; i+1 < len(f); i += 2 {
			if f[i] == "tw" {
				n, _ := strconv.Atoi(f[i+1])
				return n
			}
		}
	}
	return -1
}

// Sleep waits for d or until ctx ends, and reports whether it slept it all.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
