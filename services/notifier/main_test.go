package notifier

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/testkit/parallel"
)

// TestMain runs four tests at once: they wait on group windows, escalation
// rungs and retries far more than they use the CPU.
func TestMain(m *testing.M) { parallel.Main(m, 4) }
