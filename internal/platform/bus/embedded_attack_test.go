package bus_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// TestAttackEmbeddedListenNeedsCredentials: an embedded server asked to
// listen on loopback with no client credentials refuses to start, for any
// user of the box could then do anything on the bus; a test that asks for
// an open bus gets one; with credentials, a connection without them is
// refused.
func TestAttackEmbeddedListenNeedsCredentials(t *testing.T) {
	start := func(opts bus.EmbeddedOptions) (string, error) {
		t.Helper()
		opts.Dir, opts.Listen = t.TempDir(), "127.0.0.1:0"
		ns, err := bus.StartEmbedded(opts)
		if err != nil {
			return "", err
		}
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		return ns.ClientURL(), nil
	}
	if _, err := start(bus.EmbeddedOptions{}); err == nil || !strings.Contains(err.Error(), "without client credentials") {
		t.Errorf("listening with no credentials: %v; want a refusal", err)
	}
	url, err := start(bus.EmbeddedOptions{Open: true})
	if err != nil {
		t.Fatalf("an open bus for a test: %v", err)
	}
	if nc, err := nats.Connect(url); err != nil {
		t.Errorf("connecting to an open bus: %v", err)
	} else {
		nc.Close()
	}
	url, err = start(bus.EmbeddedOptions{Client: &bus.Credentials{User: "operator", Password: "pw-0123456789"}})
	if err != nil {
		t.Fatalf("listening with credentials: %v", err)
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("a connection without the credentials was let in")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("operator", "pw-0123456789")); err != nil {
		t.Errorf("a connection with them: %v", err)
	} else {
		nc.Close()
	}
}
