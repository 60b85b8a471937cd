// Package admintest reads a running Tocsin's operator surfaces as an
// operator's tools do: the admin server's HTTP endpoints and Prometheus
// metrics, and the status and discovery answers over NATS.
package admintest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tocsin-alarm/tocsin/internal/platform/admin"
)

// Get fetches url and returns the status code and the body.
func Get(t testing.TB, url string) (int, string) {
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

// Metrics scrapes base's /metrics and parses it as Prometheus does.
func Metrics(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := Get(t, base+"/metrics")
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

// Sample sums the samples of a family whose labels include the given
// name, value pairs (a histogram counts its observations); -1 when there
// is none.
func Sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
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

// Status asks the instances of service for their status, as tocsin
// status does, and returns the first answer.
func Status(t testing.TB, nc *nats.Conn, service string) admin.Status {
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

// Discover sends a request to subject as tocsin status does and decodes
// the answers: want of them, failing the test if fewer come within ten
// seconds, or, with want 0, all that come within a second.
func Discover[T any](t testing.TB, nc *nats.Conn, subject string, want int) []T {
	t.Helper()
	wait := 10 * time.Second
	if want == 0 {
		wait = time.Second
	}
	msgs, err := admin.Ask(context.Background(), nc, []string{subject}, wait, want)
	if err != nil || len(msgs) < want {
		t.Fatalf("%s: %d answers, want %d: %v", subject, len(msgs), want, err)
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
