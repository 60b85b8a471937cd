package locations

import (
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// entry is one key-value entry as a watch delivers it.
type entry struct {
	jetstream.KeyValueEntry
	key     string
	value   []byte
	created time.Time
}

func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Created() time.Time              { return e.created }
func (e entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }
func (e entry) Revision() uint64                { return 1 }

// FuzzHeartbeat: whatever a heartbeat holds, under whatever key, only a
// location of the config is ever live, under its own key, and never for
// longer than MaxTTL after the heartbeat.
func FuzzHeartbeat(f *testing.F) {
	f.Add("lon1.a", []byte(`{"location":"lon1","instance":"a","since":"2026-01-01T00:00:00Z","ttl_ms":15000}`))
	f.Add("lon1.a", []byte(`{"location":"aaa0","instance":"a","ttl_ms":99999999999999}`))
	f.Add("ams1.x", []byte(`{"location":"lon1","ttl_ms":-1}`))
	f.Add("x", []byte(`{`))
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	allowed := []string{"lon1", "ams1"}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		l := &Live{probers: map[string]*prober{}, now: func() time.Time { return t0 }, allowed: allowed, delivered: make(chan struct{})}
		l.apply(entry{key: key, value: value, created: t0})
		for _, loc := range l.At(t0.Add(time.Millisecond)) {
			if !slices.Contains(allowed, loc) {
				t.Errorf("%q live: not a location of the config", loc)
			}
		}
		if live := l.At(t0.Add(MaxTTL)); len(live) != 0 {
			t.Errorf("%v live %s after the heartbeat", live, MaxTTL)
		}
	})
}
