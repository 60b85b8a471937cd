package notifier

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// health keeps, for the self-watcher, whether each channel's provider is
// refusing everything: in tocsin-self under "provider.<channel>", written
// when a provider starts failing and when it works again, not per
// message. Any failure counts, for the notifier cannot tell a provider
// down from a provider refusing one address; the next success clears it.
type health struct {
	mu    sync.Mutex
	kv    jetstream.KeyValue // nil until Run opens it, and in tests that do not
	state map[string]*events.ProviderHealth
}

// maxHealthError bounds what a record keeps of an error.
const maxHealthError = 300

// observe notes one attempt on channel ch, by provider, at now.
func (h *health) observe(ctx context.Context, ch, provider string, err error, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv == nil {
		return
	}
	if h.state == nil {
		h.state = map[string]*events.ProviderHealth{}
	}
	st, known := h.state[ch]
	if !known {
		st = &events.ProviderHealth{Channel: ch, Provider: provider}
		// Another notifier, or this one before a restart, may have
		// recorded a failure: carry its start on.
		_, _ = bus.GetJSON(ctx, h.kv, events.SelfProviderKey(ch), st)
		st.Channel, st.Provider = ch, provider
		h.state[ch] = st
	}
	failing := err != nil
	if known && failing == st.Failing {
		return
	}
	if failing != st.Failing || st.Since.IsZero() {
		st.Since = now
	}
	st.Failing, st.At, st.Error = failing, now, ""
	if failing {
		st.Error = err.Error()
		if len(st.Error) > maxHealthError {
			st.Error = st.Error[:maxHealthError]
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	b, _ := json.Marshal(st)
	// A failed write is written again at the next change; messages go on.
	_, _ = h.kv.Put(wctx, events.SelfProviderKey(ch), b)
}
