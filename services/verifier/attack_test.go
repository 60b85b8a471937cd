package verifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestForgedResults: a result dated a year ahead, which taken as the
// newest would make every real result stale and keep the server "up"
// through a real failure, and a result from a location the config does
// not name, are both set aside with their reason; the real failure after
// them is judged and confirmed as ever.
func TestForgedResults(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	start(t, b, testConfig(t))
	ctx := context.Background()
	ahead := time.Now().Add(365 * 24 * time.Hour).UTC()
	for _, r := range []*events.ProbeResult{
		{Server: "mx1", Location: "lon1", Check: "tcp://127.0.0.1:25", Task: "forged-1", Purpose: events.PurposeScheduled, Started: ahead, OK: true},
		{Server: "mx1", Location: "zzz9", Check: "tcp://127.0.0.1:25", Task: "forged-2", Purpose: events.PurposeScheduled, Started: clock, OK: false, Reason: "refused"},
	} {
		if err := b.Publish(ctx, events.New(r.Task+"/result", "prober@"+r.Location, r.Started, r)); err != nil {
			t.Fatal(err)
		}
	}
	publishResult(t, b, "mx1", 1, true)
	publishResult(t, b, "mx1", 2, false)
	answer(t, b, "mx1", 3, false)
	waitState(t, b, "mx1", events.StateDown)

	got := deadReasons(t, b, 2)
	for _, want := range []string{"ahead of this verifier's clock", `a result from "zzz9", which is not one of the config's locations`} {
		if !strings.Contains(got, want) {
			t.Errorf("dead-letter reasons lack %q:\n%s", want, got)
		}
	}
}
