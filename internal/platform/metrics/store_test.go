package metrics_test

import (
	"context"
	"errors"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
)

// TestStoreUsage: each scrape asks how full the bus is, and reports what
// it was told of, bounded streams with their fill.
func TestStoreUsage(t *testing.T) {
	m := metrics.New()
	answer := []metrics.StoreUse{{Stream: "TOCSIN_EVENTS", Bytes: 850, MaxBytes: 1000}, {Stream: "KV_tocsin-banner", Bytes: 10}}
	var fail error
	m.StoreUsage(func(context.Context) ([]metrics.StoreUse, error) { return answer, fail })
	m.StoreUsage(func(context.Context) ([]metrics.StoreUse, error) { return nil, errors.New("the first one set counts") })

	got := scrape(t, m)
	want := map[string]float64{
		"tocsin_bus_store_bytes TOCSIN_EVENTS": 850, "tocsin_bus_store_max_bytes TOCSIN_EVENTS": 1000, "tocsin_bus_store_fill_ratio TOCSIN_EVENTS": 0.85,
		"tocsin_bus_store_bytes KV_tocsin-banner": 10,
	}
	if len(got) != len(want) {
		t.Errorf("scrape: %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	answer, fail = nil, errors.New("jetstream does not answer")
	if got := scrape(t, m); len(got) != 0 {
		t.Errorf("with JetStream gone the scrape has %v, want nothing", got)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "stream" {
					got[f.GetName()+" "+l.GetValue()] = gauge(s)
				}
			}
		}
	}
	return got
}

func gauge(s *dto.Metric) float64 { return s.GetGauge().GetValue() }
