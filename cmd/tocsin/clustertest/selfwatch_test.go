package clustertest

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestProberKilledIsTold: the process that runs the probers is killed
// with SIGKILL, as a lost host would be: it withdraws nothing, its
// heartbeats just stop. Within two check intervals the self-watcher, in a
// process of its own, has staff emailed that the locations stopped
// checking.
func TestProberKilledIsTold(t *testing.T) {
	build(t)
	t.Parallel()
	const interval = 20 * time.Second
	f := newFleet(t, 1, 1, []string{"dc01"})
	h := newHarness(t, f, settings{interval: interval.String(), timeout: "5s", groupWindow: "2m",
		extra: "selfwatch: {every: 5s, raise_after: 2, clear_after: 2}\n"})
	h.startServices()
	sw := newProc(t, h.dir, "selfwatch", h.bin.tocsin, h.env, "run", "--config", h.config, "--nats", h.cluster.URLs(),
		"--replicas", "3", "--services", "selfwatch", "--data", filepath.Join(h.dir, "selfwatch-data"), "--admin-listen", "127.0.0.1:0")
	sw.start()
	sw.waitLog("tocsin running", 60*time.Second)
	h.waitStates([]string{f.servers[0].id}, events.StateUp, 60*time.Second)

	told := func() bool {
		for _, m := range mailTo(h.mail.Messages(), aliceEmail) {
			if strings.Contains(m.Text, "has not checked anything") {
				return true
			}
		}
		return false
	}
	if told() {
		t.Fatal("staff were told a location stopped while every prober ran")
	}
	killed := time.Now()
	h.procs["prober"].kill()
	wait.Within(t, 2*interval, "an email that the locations stopped checking", told)
	t.Logf("told %s after the kill", time.Since(killed).Round(time.Millisecond))
	for _, m := range mailTo(h.mail.Messages(), aliceEmail) {
		if strings.Contains(m.Text, "has not checked anything") && !strings.Contains(m.Text, "lon1") && !strings.Contains(m.Text, "ams1") && !strings.Contains(m.Text, "nyc1") {
			t.Errorf("the email names no location:\n%s", m.Text)
		}
	}
}
