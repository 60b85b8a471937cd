package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	dto "github.com/prometheus/client_model/go"

	"github.com/tocsin-alarm/tocsin/internal/testkit/admintest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestOperability runs three probers (nyc1 cannot reach anything) and a
// verifier in one process, finds them with NATS micro's discovery, and
// follows a check failure, a false alarm and a confirmed outage in the
// process's /metrics, read back as Prometheus reads them.
func TestOperability(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three probers and a verifier")
	}
	t.Parallel()
	cfgFile, broken := unreachableFromNYC(t, 3, "1s")
	ns := bustest.Start(t)
	p := startProcess(t, "run", "--config", cfgFile, "--nats", ns.URL, "--shutdown-timeout", "10s", "--log-format", "json",
		"--admin-listen", "127.0.0.1:0", "--services", "prober,verifier",
		"--location", "lon1,ams1,nyc1", "--source-address", "127.0.0.1,127.0.0.2,127.0.0.3")
	defer func() {
		if t.Failed() {
			t.Logf("tocsin:\n%s", p.log.String())
		}
	}()

	nc, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// Discovery finds every service of the process, with where its admin
	// server is.
	var found []string
	adminAddr := ""
	wait.Within(t, time.Minute, "discovery to find every service", func() bool {
		found = found[:0]
		for _, ping := range admintest.Discover[micro.Ping](t, nc, "$SRV.PING", 0) {
			if strings.HasPrefix(ping.Name, "tocsin-") {
				found = append(found, ping.Name+" "+ping.Metadata["service"]+" "+ping.Metadata["location"])
				adminAddr = ping.Metadata["admin"]
			}
		}
		return len(found) >= 4
	})
	slices.Sort(found)
	want := []string{"tocsin-prober prober ams1", "tocsin-prober prober lon1", "tocsin-prober prober nyc1", "tocsin-verifier verifier "}
	if !slices.Equal(found, want) {
		t.Errorf("discovery found %q, want %q", found, want)
	}
	if adminAddr == "" {
		t.Fatal("the services do not say where their admin server is")
	}
	base := "http://" + adminAddr

	wait.Within(t, 2*time.Minute, "the process is ready", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})
	st := admintest.Status(t, nc, "verifier")
	if st.Service != "verifier" || !st.Ready || st.Detail != "ready" {
		t.Errorf("verifier status %+v, want ready", st)
	}
	if _, err := time.Parse(time.RFC3339, st.Started); err != nil {
		t.Errorf("verifier status started %q: %v", st.Started, err)
	}

	// nyc1 cannot reach anything: its failures are false alarms.
	var fams map[string]*dto.MetricFamily
	wait.Within(t, 2*time.Minute, "a false alarm is counted", func() bool {
		fams = scrapeMetrics(t, base)
		return sample(fams, "tocsin_false_alarms_total") >= 1
	})
	if n := sample(fams, "tocsin_check_failures_total", "location", "nyc1", "role", "web"); n < 1 {
		t.Errorf("check failures from nyc1: %v, want some", n)
	}
	if n := sample(fams, "tocsin_verifications_total", "stage", "started"); n < 1 {
		t.Errorf("verifications started: %v, want some", n)
	}
	if n := sample(fams, "tocsin_incidents_total", "event", "opened"); n > 0 {
		t.Errorf("incidents opened on false alarms only: %v", n)
	}

	// A real outage: s1 answers 503 to everyone.
	broken.Store("s1")
	// The incident is counted as it opens, the confirmation once the
	// server's record is written, a moment later.
	wait.Within(t, 2*time.Minute, "the outage is confirmed", func() bool {
		fams = scrapeMetrics(t, base)
		return sample(fams, "tocsin_incidents_total", "event", "opened") >= 1 && sample(fams, "tocsin_verifications_total", "stage", "confirmed") >= 1
	})
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"tocsin_verifications_total", []string{"stage", "confirmed"}},
		{"tocsin_check_failures_total", []string{"location", "lon1", "role", "web", "reason", "status"}},
		{"tocsin_check_failures_total", []string{"location", "ams1", "role", "web", "reason", "status"}},
		{"tocsin_checks_total", []string{"location", "lon1", "role", "web"}},
		{"tocsin_check_duration_seconds", []string{"location", "ams1"}},
		{"tocsin_messages_total", []string{"consumer", "verifier", "result", "handled"}},
		{"tocsin_messages_total", []string{"consumer", "prober-lon1-schedule", "result", "handled"}},
		{"tocsin_incidents_open", nil},
		{"tocsin_service_ready", []string{"service", "prober@nyc1"}},
	} {
		if n := sample(fams, c.name, c.labels...); n < 1 {
			t.Errorf("%s%v = %v, want at least 1", c.name, c.labels, n)
		}
	}
	if n := sample(fams, "tocsin_consumer_pending_messages", "consumer", "verifier"); n < 0 {
		t.Error("the verifier consumer's lag is not reported")
	}

	// Every service's own lines say which service, and probers where.
	lines := map[string]bool{}
	for line := range strings.SplitSeq(p.log.String(), "\n") {
		var rec struct{ Service, Location, Consumer string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Service != "" {
			lines[rec.Service+"@"+rec.Location] = true
		}
	}
	for _, s := range []string{"prober@nyc1", "verifier@"} {
		if !lines[s] {
			t.Errorf("no log line with service and location %s", s)
		}
	}

	// A second verifier stands by; tocsin status says which one works.
	startProcess(t, "run", "--config", cfgFile, "--nats", ns.URL, "--shutdown-timeout", "10s", "--services", "verifier")
	var report string
	wait.Within(t, 2*time.Minute, "tocsin status shows an active verifier and a standby", func() bool {
		_, report, _ = runStatus(t, "--nats", ns.URL, "--config", cfgFile)
		return regexp.MustCompile(`\n  verifier +ready, active`).MatchString(report) && regexp.MustCompile(`\n  verifier +ready, standby`).MatchString(report)
	})
	if strings.Contains(report, "is active") {
		t.Errorf("with a verifier active, tocsin status says:\n%s", report)
	}
}

// The demo's test reads the admin server as these do.
var (
	httpGet       = admintest.Get
	scrapeMetrics = admintest.Metrics
	sample        = admintest.Sample
)
