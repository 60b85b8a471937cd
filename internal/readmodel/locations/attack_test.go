package locations_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/locations"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// TestForgedHeartbeats: whoever can write a heartbeat cannot make a
// location live that the config does not name (it would be sent checks it
// never makes, and a name that sorts first would take every re-check),
// cannot keep a location live for a year with one heartbeat, and cannot
// speak for another location under its own key.
func TestForgedHeartbeats(t *testing.T) {
	ctx, kv := bucket(t)
	t0 := time.Now()
	live := watch(ctx, t, kv, "lon1", "ams1")
	put := func(key string, hb events.Heartbeat) {
		b, _ := json.Marshal(hb)
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	year := (365 * 24 * time.Hour).Milliseconds()
	put("aaa0.x", events.Heartbeat{Location: "aaa0", Instance: "x", Since: t0, TTLMS: year})   // a ghost that sorts first
	put("lon1.x", events.Heartbeat{Location: "ams1", Instance: "x", Since: t0, TTLMS: 60_000}) // ams1 under lon1's key
	put("lon1.y", events.Heartbeat{Location: "lon1", Instance: "y", Since: t0, TTLMS: year})   // a year's vouching
	wait.For(t, "only lon1 live", func() bool { return slices.Equal(live.List(), []string{"lon1"}) })
	if got := live.At(time.Now().Add(locations.MaxTTL + time.Second)); len(got) != 0 {
		t.Errorf("live %s after the longest a heartbeat may vouch for: %v", locations.MaxTTL, got)
	}
}
