package failover

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestOlderRecordCarriesOn: a record written while actions were held in
// their older form ({id, action}) holds nothing that can be published
// again. The actions are dropped with a warning, rather than block the
// server for ever, and the removal the record began is finished, announced
// and counted.
func TestOlderRecordCarriesOn(t *testing.T) {
	l := startLB(t)
	w := newWorld(t, fmt.Sprintf(`{haproxy: [{address: %q, backend: web}]}`, l.h.Socket), nil)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.leftMidRemoval(t, l, func(down events.Event, now time.Time) any {
		return map[string]any{"server": "web1", "box": "web", "change": down.ID, "since": now, "state": "down",
			"places":  map[string]any{"haproxy-1": map[string]any{"at": placeRemoving}},
			"pending": []map[string]any{{"id": down.ID + "/remove/haproxy-1/held", "action": map[string]any{"action": "remove", "outcome": "held"}}},
		}
	})
	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- New(w.cfg, Deps{Bus: w.b, Log: slog.New(slog.NewTextHandler(w.logs, nil)), Metrics: m}).Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })

	wait.For(t, "the removal finished", func() bool { return len(w.actions(t, "web1")) == 1 })
	if got := summary(w.actions(t, "web1")); got != "remove haproxy done 1" {
		t.Errorf("actions:\n%s", got)
	}
	if !strings.Contains(w.logs.String(), "actions held in an older form dropped unpublished") {
		t.Errorf("no warning of the dropped actions:\n%s", w.logs.String())
	}
	wait.For(t, "the action counted", func() bool { return counted(t, m, "remove", "done") == 1 })
}

// counted is the failover actions of kind and outcome the metrics hold.
func counted(t *testing.T, m *metrics.Metrics, kind, outcome string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "tocsin_failover_actions_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == kind && labels["outcome"] == outcome {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}
