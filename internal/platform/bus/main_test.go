package bus_test

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
)

// TestMain runs four tests at once: they wait on ack waits, back-offs and take-overs
// far more than they use the CPU.
func TestMain(m *testing.M) { parallel.Main(m, 4) }
