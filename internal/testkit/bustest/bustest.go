// Package bustest starts a real JetStream server for a test: embedded, on a
// loopback port, storing to the test's temporary directory.
package bustest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Server is an embedded JetStream server listening on 127.0.0.1.
type Server struct {
	NS  *server.Server
	URL string
	// Limits are the room the server gives its streams, and what Connect
	// sizes them to.
	Limits bus.Limits
}

// Start starts a server that the test shuts down when it ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartLimited(t, bus.Limits{})
}

// StartLimited starts a server whose streams get only the room of limits
// (the config's defaults where zero): for a test that fills one.
func StartLimited(t testing.TB, limits bus.Limits) *Server {
	t.Helper()
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Open: true, Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	return &Server{NS: ns, URL: ns.ClientURL(), Limits: limits}
}

// Connect returns a bus on s with every stream and bucket in place.
func (s *Server) Connect(t testing.TB, log *slog.Logger) *bus.Bus {
	t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b, err := bus.Connect(s.URL, nil, t.Name(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.NC.Close)
	b.Limits = s.Limits
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Ensure(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return b
}

// New starts a server and connects to it.
func New(t testing.TB) *bus.Bus {
	t.Helper()
	return Start(t).Connect(t, nil)
}

// Put writes v as JSON under key in bucket, as the services keep their
// records: for a test to set the state it starts from.
func Put(t testing.TB, b *bus.Bus, bucket, key string, v any) {
	t.Helper()
	ctx := context.Background()
	kv, err := b.KV(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, key, data); err != nil {
		t.Fatalf("put %s %s: %v", bucket, key, err)
	}
}

// MaxEvents is how many events Events reads at the most.
const MaxEvents = 1000

// Events is every event stored so far in stream on subject (a filter:
// wildcards allowed), decoded, in the order stored; the first MaxEvents
// of them. It fails the test on one that does not decode: for a test to
// look at what a service published.
func Events(t testing.TB, b *bus.Bus, stream, subject string) []events.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := b.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(MaxEvents)
	if err != nil {
		t.Fatal(err)
	}
	var out []events.Event
	for m := range batch.Messages() {
		ev, err := events.Decode(m.Subject(), m.Data())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// Next is the next event c delivers, decoded, waiting within at most for
// it. It fails the test if none comes, saying what (what came so far,
// what was awaited) and why, or if the event does not decode.
func Next(t testing.TB, c jetstream.Consumer, within time.Duration, what string) events.Event {
	t.Helper()
	m, err := c.Next(jetstream.FetchMaxWait(within))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	ev, err := events.Decode(m.Subject(), m.Data())
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
