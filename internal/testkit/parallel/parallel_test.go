package parallel

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

func TestMain(m *testing.M) { Main(m, 7) }

// TestRunsNAtOnce: seven tests that wait, run as Main says, are all under
// way at the same moment, on however few cores.
func TestRunsNAtOnce(t *testing.T) {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(strings.TrimLeft(a, "-"), "test.parallel") {
			t.Skipf("%s given on the command line", a)
		}
	}
	var started atomic.Int32
	for range 7 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			started.Add(1)
			// Tests run fewer at a time never see the seventh start.
			wait.Within(t, 10*time.Second, "all seven under way", func() bool { return started.Load() == 7 })
		})
	}
}
