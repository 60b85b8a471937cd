package main

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// minParallel is how many of the end-to-end tests marked parallel run at
// once unless -parallel says otherwise. They mostly wait (check intervals,
// verifications, shutdowns) rather than compute, and one of them alone
// (TestFalseAlarmsAreFilteredOut) takes minutes: with go test's default,
// one test per CPU, it could start only after the others, on a machine of
// two.
const minParallel = 4

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given && runtime.GOMAXPROCS(0) < minParallel {
		if err := flag.Set("test.parallel", strconv.Itoa(minParallel)); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
