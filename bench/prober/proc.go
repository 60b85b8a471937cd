package main

import (
	"runtime/metrics"
	"time"
)

// runtimeStats are the Go runtime's own accounts, to tell the collector's
// share of the CPU and the live heap inside the resident memory.
type runtimeStats struct {
	gcCPU    time.Duration
	heapLive int64
}

func readRuntime() runtimeStats {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var r runtimeStats
	if s[0].Value.Kind() == metrics.KindFloat64 {
		r.gcCPU = time.Duration(s[0].Value.Float64() * float64(time.Second))
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		r.heapLive = int64(s[1].Value.Uint64())
	}
	return r
}
