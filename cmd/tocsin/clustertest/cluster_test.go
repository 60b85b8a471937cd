package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// node is one nats-server of the cluster.
type node struct {
	name                      string
	client, route, monitoring int
	*proc
}

// cluster is three nats-server processes on loopback, routed to each
// other, each with JetStream and a store of its own.
type cluster struct {
	t     *testing.T
	nodes []*node
}

// freePorts returns n TCP ports of 127.0.0.1 that were free a moment ago,
// below the kernel's range of ephemeral ports: a port that a process must
// bind again after a restart, or that a test closes and reopens, is not
// then taken meanwhile by some outgoing connection's local end.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for _, ln := range listenPorts(t, n) {
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
	}
	return ports
}

// handedOut are the ports listenPorts gave to the tests of this run: a
// test closes some of them and binds them again later, or gives them to a
// process that binds them, so that no other test running beside it may
// have them meanwhile. Other programs of the machine are left to the
// random start.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// listenPorts listens on n TCP ports of 127.0.0.1 below the ephemeral
// range, starting from a random one so that tests running at the same
// time on the machine rarely try the same, and never one handed out to
// another test of this run.
func listenPorts(t *testing.T, n int) []net.Listener {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports == nil {
		handedOut.ports = map[int]bool{}
	}
	low, high := 10000, ephemeralLow()-1
	if high-low < 4*n {
		t.Fatalf("only %d ports below the ephemeral range for %d", high-low, n)
	}
	span := high - low + 1
	next := rand.IntN(span)
	var lns []net.Listener
	for range span {
		if len(lns) == n {
			break
		}
		port := low + next
		next = (next + 1) % span
		if handedOut.ports[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use
		}
		lns = append(lns, ln)
	}
	if len(lns) < n {
		for _, ln := range lns {
			ln.Close()
		}
		t.Fatalf("found %d free ports below the ephemeral range, need %d", len(lns), n)
	}
	for _, ln := range lns {
		handedOut.ports[ln.Addr().(*net.TCPAddr).Port] = true
	}
	return lns
}

// ephemeralLow is the first port the kernel hands out to outgoing
// connections; 32768 where it does not say.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 10000 {
		return 32768
	}
	return low
}

// startCluster starts the three servers and waits until JetStream has a
// meta leader that all of them agree on.
func startCluster(t *testing.T, bin binaries, dir string) *cluster {
	t.Helper()
	ports := freePorts(t, 9)
	c := &cluster{t: t}
	for i := range 3 {
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), client: ports[i*3], route: ports[i*3+1], monitoring: ports[i*3+2]})
	}
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.route))
			}
		}
		store := filepath.Join(dir, n.name+"-store")
		conf := filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, `server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 2GB
}
cluster {
  name: tocsin
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.name, n.client, n.monitoring, store, n.route, strings.Join(routes, ", ")), 0o600); err != nil {
			t.Fatal(err)
		}
		n.proc = newProc(t, dir, "nats-"+n.name, bin.nats, nil, "-c", conf)
		n.start()
	}
	c.waitMetaLeader(60 * time.Second)
	return c
}

// URLs is the client URL of every server, as tocsin's --nats takes them.
func (c *cluster) URLs() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.client))
	}
	return strings.Join(urls, ",")
}

// metaLeader asks one server's monitoring endpoint who leads JetStream's
// meta group; "" if it does not know or does not answer.
func (n *node) metaLeader() string {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", n.monitoring))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
			Size   int    `json:"cluster_size"`
		} `json:"meta_cluster"`
	}
	if json.NewDecoder(resp.Body).Decode(&jsz) != nil || jsz.Meta == nil {
		return ""
	}
	return jsz.Meta.Leader
}

// waitMetaLeader waits until every running server names the same meta leader.
func (c *cluster) waitMetaLeader(within time.Duration) string {
	c.t.Helper()
	var leader string
	wait.Within(c.t, within, "a meta leader every server names", wait.Spaced(200*time.Millisecond, func() bool {
		leader = ""
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			l := n.metaLeader()
			if l == "" || (leader != "" && l != leader) {
				return false
			}
			leader = l
		}
		return leader != ""
	}))
	return leader
}

// node returns the server of that name.
func (c *cluster) node(name string) *node {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	c.t.Fatalf("no server named %q in the cluster", name)
	return nil
}

// connect is the test's own client of the cluster, reconnecting for as
// long as the test runs.
func (c *cluster) connect() (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.Name("cluster test"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		c.t.Fatalf("connect to the cluster: %v", err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatal(err)
	}
	return nc, js
}

// streamLeader is the server leading a stream's replicas now.
func streamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s has no leader", stream)
	}
	return info.Cluster.Leader, nil
}

// lastStored is when the newest message of a stream was stored, as its
// current leader says; an error while it has none.
func lastStored(ctx context.Context, js jetstream.JetStream, stream string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return time.Time{}, err
	}
	return s.CachedInfo().State.LastTime, nil
}
