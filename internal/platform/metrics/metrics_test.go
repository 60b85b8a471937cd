package metrics_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// value is the value of the sample of family name whose consumer label is
// consumer; ok is false when the scrape has none.
func value(t *testing.T, m *metrics.Metrics, name, consumer string) (float64, bool) {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if slices.ContainsFunc(s.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == "consumer" && l.GetValue() == consumer }) {
				return s.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// TestConsumerLag: a consumer that is not draining its backlog shows it at
// each scrape, and with JetStream gone the scrape leaves the gauges out
// rather than hang or fail.
func TestConsumerLag(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, events.StreamTasks, jetstream.ConsumerConfig{
		Durable: "prober-lon1", FilterSubject: events.SubjectProbeTask("lon1"), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.ConsumerUp(cons)
	for i := range 7 {
		if _, err := b.JS.Publish(ctx, events.SubjectProbeTask("lon1"), fmt.Appendf(nil, "task %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, ok := value(t, m, "tocsin_consumer_pending_messages", "prober-lon1"); !ok || got != 7 {
		t.Errorf("pending %v (reported %v), want 7", got, ok)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range batch.Messages() {
		n++ // taken, never acknowledged
	}
	if n != 3 {
		t.Fatalf("fetched %d, want 3", n)
	}
	if got, ok := value(t, m, "tocsin_consumer_pending_messages", "prober-lon1"); !ok || got != 4 {
		t.Errorf("pending after taking 3: %v (reported %v), want 4", got, ok)
	}
	if got, ok := value(t, m, "tocsin_consumer_ack_pending_messages", "prober-lon1"); !ok || got != 3 {
		t.Errorf("ack pending after taking 3: %v (reported %v), want 3", got, ok)
	}

	srv.NS.Shutdown()
	srv.NS.WaitForShutdown()
	if got, ok := value(t, m, "tocsin_consumer_pending_messages", "prober-lon1"); ok {
		t.Errorf("pending reported as %v with JetStream gone, want it absent", got)
	}
}

func TestReadiness(t *testing.T) {
	m := metrics.New()
	m.Expect("prober@lon1", "prober-lon1")
	m.Expect("statuspage")
	got := m.NotReady([]string{"prober@lon1", "statuspage", "notifier"})
	want := []string{"prober@lon1: consumer prober-lon1 not set up", "statuspage has not started", "notifier is not running"}
	if !slices.Equal(got, want) {
		t.Errorf("not ready because %q, want %q", got, want)
	}
	m.Started("statuspage")
	if ok, why := m.Ready("statuspage"); !ok {
		t.Errorf("statuspage started but not ready: %s", why)
	}
	m.ConsumerDown(events.StreamTasks, "prober-lon1") // never up: no effect
	if ok, _ := m.Ready("prober@lon1"); ok {
		t.Error("prober ready without its consumer")
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *metrics.Metrics
	m.CheckRan("lon1", "mx", "timeout", time.Second)
	m.Message("verifier", metrics.Handled)
	m.Expect("verifier", "verifier")
	if ok, _ := m.Ready("verifier"); ok {
		t.Error("nil metrics say a service is ready")
	}
}

func TestReasonClass(t *testing.T) {
	for _, c := range []struct{ reason, want string }{
		{"connection reset by the server", "reset"},
		{"expected a 2xx or 3xx status, got 503 Service Unavailable", "status"},
		{"no answer within 10s (timeout)", "timeout"},
		{"dial tcp 10.0.0.1:25: connect: connection refused", "refused"},
		{"lookup mx1.internal: no such host", "dns"},
		{"certificate expired 3 days ago", "certificate"},
		{"something nobody foresaw", "other"},
	} {
		if got := metrics.ReasonClass(c.reason); got != c.want {
			t.Errorf("ReasonClass(%q) = %q, want %q", c.reason, got, c.want)
		}
	}
}
