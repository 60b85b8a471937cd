package main

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
)

// minParallel is how many of the end-to-end tests marked parallel run at
// once unless -parallel says otherwise. They mostly wait (check intervals,
// verifications, shutdowns) rather than compute, and one of them alone
// (TestFalseAlarmsAreFilteredOut) takes a minute: with go test's default,
// one test per CPU, it could start only after the others, on a machine of
// two.
const minParallel = 4

func TestMain(m *testing.M) { parallel.Main(m, minParallel) }
