// Package parallel lets a package whose tests spend their time waiting
// (on timers, ack waits, heartbeats, a provider's retry) run more of them
// at once than the machine has cores. go test runs GOMAXPROCS parallel
// tests at most, which leaves a 2-core machine idle while such tests
// sleep.
package parallel

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// Main is a package's TestMain: it runs the tests that call t.Parallel n
// at a time, or GOMAXPROCS at a time if that is more, unless the command
// line says how many (-parallel), and exits with their result.
func Main(m *testing.M, n int) {
	At(n)
	os.Exit(m.Run())
}

// At is Main's setting alone, for a TestMain that has more to do around
// m.Run: it parses the command line and, unless -parallel was given, runs
// the tests that call t.Parallel n at a time, or GOMAXPROCS if that is more.
func At(n int) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && n > runtime.GOMAXPROCS(0) {
		if err := flag.Set("test.parallel", strconv.Itoa(n)); err != nil {
			fmt.Fprintln(os.Stderr, "parallel:", err)
			os.Exit(2)
		}
	}
}
