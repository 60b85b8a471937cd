package notifier

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
)

// unreadableKV is a real bucket whose reads of keys starting with prefix
// get no answer in time, as when the bus is down or its leader is moving:
// each such read is made with no time left.
type unreadableKV struct {
	jetstream.KeyValue
	prefix string
}

func (kv unreadableKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if strings.HasPrefix(key, kv.prefix) {
		gone, cancel := context.WithCancel(ctx)
		cancel()
		ctx = gone
	}
	return kv.KeyValue.Get(ctx, key)
}

// TestSMSAckNotLostToABusError: an "ACK" whose incident cannot be looked
// up, because the bus did not answer, gets 503 so that Twilio sends it
// again; only an incident the bus says does not exist gets the "no
// incident" reply (200, which Twilio does not retry).
func TestSMSAckNotLostToABusError(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body, unreadable string
		code                   int
		want                   string
	}{
		{"last page unreadable", "ACK", "last.", http.StatusServiceUnavailable, "try again"},
		{"code unreadable", "ACK k3f9x2", "code.", http.StatusServiceUnavailable, "try again"},
		{"no last page", "ACK", "nothing.", http.StatusOK, "No incident found"},
		{"no such code", "ACK k3f9x2", "nothing.", http.StatusOK, "No incident found"},
		{"a code no key can hold", "ACK a*b", "nothing.", http.StatusOK, "No incident found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, _, public := inProcess(t, func(kv jetstream.KeyValue) jetstream.KeyValue { return unreadableKV{kv, tt.unreadable} })
			form := url.Values{"From": {alicePh}, "Body": {tt.body}, "MessageSid": {"SM00000000000000000000000000000001"}}
			req := httptest.NewRequest("POST", pathTwilioSMS, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", twilioapi.Signature(testToken, public+pathTwilioSMS, form))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%q: %d %q, want %d %q", tt.body, rec.Code, rec.Body, tt.code, tt.want)
			}
		})
	}
}
