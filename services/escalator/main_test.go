package escalator

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
)

// TestMain runs four tests at once: they wait on deadlines and rate limits
// far more than they use the CPU.
func TestMain(m *testing.M) { parallel.Main(m, 4) }
