package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestConflictOnAReplicatedBucket: on a cluster, a bucket of three
// replicas says a write lost its race with another code than one server
// does; IsConflict knows both, so that a lost race is read again at once
// rather than failed and redelivered with a backoff.
func TestConflictOnAReplicatedBucket(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := clusterJS(t, 3)
	var kv jetstream.KeyValue
	onCluster(t, ctx, "a replicated bucket", func(c context.Context) (err error) {
		kv, err = js.CreateKeyValue(c, jetstream.KeyValueConfig{Bucket: "conflict", Replicas: 3})
		return err
	})
	first, err := bus.PutJSON(ctx, kv, "k", map[string]int{"n": 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Writers racing at one revision: one wins, and the leader refuses the
	// others while its proposal is in flight (code 10164) or once it is
	// applied (10071).
	const writers = 16
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			_, err := bus.PutJSON(ctx, kv, "k", map[string]int{"n": i}, first)
			errs <- err
		}()
	}
	won, constant := 0, 0
	for range writers {
		err := <-errs
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			won++
		case !bus.IsConflict(err):
			t.Errorf("a writer that lost the race on three replicas: %v, want a conflict", err)
		case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			constant++
			if !bus.InFlight(err) {
				t.Errorf("%v: not said to be in flight", err)
			}
		}
	}
	if won != 1 {
		t.Errorf("%d of %d writers at one revision won, want 1", won, writers)
	}
	t.Logf("%d of %d lost while the winner's proposal was in flight", constant, writers-1)
	if _, err := bus.PutJSON(ctx, kv, "k", map[string]int{"n": -1}, 0); !bus.IsConflict(err) {
		t.Errorf("a create of a key that exists on three replicas: %v, want a conflict", err)
	}
	if err := kv.Delete(ctx, "k", jetstream.LastRevision(first)); !bus.IsConflict(err) {
		t.Errorf("a delete at a stale revision on three replicas: %v, want a conflict", err)
	}
}

// clusterJS is JetStream on a cluster of n embedded servers, through a
// connection the test closes.
func clusterJS(t *testing.T, n int) jetstream.JetStream {
	t.Helper()
	return jsAt(t, strings.Join(startCluster(t, n), ","))
}

// jsAt is JetStream through a connection to urls that the test closes.
func jsAt(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// onCluster makes what create makes, trying again while the cluster,
// just started, elects its meta leader; each try bounded on its own.
func onCluster(t *testing.T, ctx context.Context, what string, create func(context.Context) error) {
	t.Helper()
	var err error
	if !wait.Until(ctx, 30*time.Second, wait.Spaced(200*time.Millisecond, func() bool {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err = create(c)
		return err == nil
	})) {
		t.Fatalf("no %s: %v", what, err)
	}
}

// startCluster starts n embedded JetStream servers routed to each other on
// loopback, and returns their client URLs; the test shuts them down.
func startCluster(t *testing.T, n int) []string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var urls []string
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "conflict", Host: "127.0.0.1", Port: p},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server n%d not ready", i+1)
		}
		urls = append(urls, ns.ClientURL())
	}
	return urls
}
