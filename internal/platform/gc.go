package platform

import "runtime/debug"

// GCPercent is the garbage collector's target that a Tocsin process runs
// with: the heap may grow a quarter over what is live between two
// collections, not Go's default of as much again. What a running Tocsin
// holds (the config, the schedule, each server's state) changes little,
// so the default's headroom is memory paid for nothing: at 100,000
// servers, 68 MB live made the process hold 190 MB, and holds 131 MB at
// most at 25. The collections this adds cost about a tenth of the
// prober's CPU, which checks on a beat have more than paid for
// (docs/benchmarks.md).
const GCPercent = 25

// TuneGC sets GCPercent unless the operator chose with GOGC; env is how
// the environment is read (os.LookupEnv).
func TuneGC(env func(string) (string, bool)) {
	if _, set := env("GOGC"); set {
		return
	}
	debug.SetGCPercent(GCPercent)
}
