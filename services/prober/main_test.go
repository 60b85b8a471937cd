package prober

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
)

// TestMain runs four tests at once: they wait on check intervals, windows and heartbeats
// far more than they use the CPU.
func TestMain(m *testing.M) { parallel.Main(m, 4) }
