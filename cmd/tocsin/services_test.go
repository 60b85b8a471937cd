package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestRunWatchdogWithoutSectionSaysItIdles: a watchdog deployed on its own
// (the Compose profile, deploy/k8s/watchdog.yaml) with a config that has no
// watchdog section runs, does nothing, and says so in its log.
func TestRunWatchdogWithoutSectionSaysItIdles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProcess(t, "run", "--config", oneBoxConfig(t, dir), "--data", dir+"/data", "--services", "watchdog", "--shutdown-timeout", "10s")
	wait.Within(t, 30*time.Second, "tocsin run to start", func() bool { return strings.Contains(p.log.String(), "tocsin running") })
	if log := p.log.String(); !strings.Contains(log, "nothing to run") || !strings.Contains(log, "watchdog section") {
		t.Errorf("the log does not say the watchdog has nothing to do:\n%s", log)
	}
}
