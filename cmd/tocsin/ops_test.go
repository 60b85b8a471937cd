package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
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
		for _, ping := range discoverAll[micro.Ping](t, nc, "$SRV.PING") {
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
	st := askStatus(t, nc, "verifier")
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
		{"tocsin_messages_total", []string{"consumer", "prober-lon1", "result", "handled"}},
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

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not Prometheus text: %v", err)
	}
	return fams
}

// sample sums the samples of a family whose labels include the given
// name, value pairs (a histogram counts its observations); -1 when there
// is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	sum, seen := 0.0, false
	for _, s := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range s.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		seen = true
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Histogram != nil:
			sum += float64(s.GetHistogram().GetSampleCount())
		}
	}
	if !seen {
		return -1
	}
	return sum
}

func askStatus(t *testing.T, nc *nats.Conn, service string) admin.Status {
	t.Helper()
	msg, err := nc.Request(admin.StatusSubject(service), nil, 10*time.Second)
	if err != nil {
		t.Fatalf("status of %s: %v", service, err)
	}
	var st admin.Status
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatalf("status of %s: %v in %s", service, err, msg.Data)
	}
	return st
}

// discoverAll sends a micro discovery request and decodes what answers
// within a second.
func discoverAll[T any](t *testing.T, nc *nats.Conn, subject string) []T {
	t.Helper()
	msgs, err := admin.Ask(context.Background(), nc, []string{subject}, time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []T
	for _, m := range msgs {
		var v T
		if err := json.Unmarshal(m.Data, &v); err != nil {
			t.Fatalf("%s: %v in %s", subject, err, m.Data)
		}
		got = append(got, v)
	}
	return got
}
