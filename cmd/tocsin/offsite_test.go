package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The status page run alone off-site, restarted while the main site is out
// of reach, starts anyway and serves the state it last knew.
func TestOffsiteStatusPageRestartedWhileCutOff(t *testing.T) {
	ns := bustest.Start(t)
	b := ns.Connect(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	page := "http://" + ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfgFile := writeConfigIn(t, dir, fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: web, name: Websites, servers: [{id: web1, check: "tcp://127.0.0.1:1"}]}]
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: 127.0.0.1, from: a@example.net}}
statuspage: {listen: "%s"}
`, strings.TrimPrefix(page, "http://")))
	p := startProcess(t, "run", "--config", cfgFile, "--services", "statuspage", "--nats", ns.URL, "--data", filepath.Join(dir, "data"), "--admin-listen", "127.0.0.1:0")

	ctx := context.Background()
	for bucket, rec := range map[string]any{
		events.BucketServers: map[string]any{"id": "web1", "state": "down", "since": time.Now().UTC()},
		events.BucketBoxes:   map[string]any{"state": "down", "since": time.Now().UTC()},
	} {
		kv, err := b.KV(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		key := "web1"
		if bucket == events.BucketBoxes {
			key = "web"
		}
		data, _ := json.Marshal(rec)
		if _, err := kv.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	websitesDown := func() bool {
		resp, err := http.Get(page + "/api/v2/components.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `"name":"Websites","status":"major_outage"`)
	}
	wait.Within(t, 10*time.Second, "the outage on the page", websitesDown)

	p.stop()
	ns.NS.Shutdown() // the main site is gone
	ns.NS.WaitForShutdown()
	p.start()
	wait.Within(t, 10*time.Second, "the restarted page to serve the saved outage", websitesDown)
	resp, err := http.Get(page + "/")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(html), "lost its link to the monitoring system") {
		t.Errorf("the restarted page does not say its state may be out of date:\n%s", html)
	}
}
