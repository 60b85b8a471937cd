package statuspage

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// A document is built again when the page changes or a second has passed,
// and not otherwise.
func TestEncodedDocFollowsChangesAndTheClock(t *testing.T) {
	at := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: web, name: Websites, servers: [{id: web1, check: "tcp://127.0.0.1:80"}, {id: web2, check: "tcp://127.0.0.1:81"}]}]
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := newPage(cfg, func() time.Time { return at })
	builds := 0
	d := &encodedDoc{build: func(now time.Time) any { builds++; return map[string]any{"now": now, "n": builds} }}
	get := func(now time.Time) string {
		t.Helper()
		doc, err := d.current(p, now)
		if err != nil {
			t.Fatal(err)
		}
		return string(doc.body)
	}
	first := get(at)
	if again := get(at.Add(500 * time.Millisecond)); again != first || builds != 1 {
		t.Errorf("unchanged page within a second: %d builds, body %q then %q; want 1 build, the same body", builds, first, again)
	}
	p.setServer("web1", events.StateDown, at)
	if changed := get(at.Add(600 * time.Millisecond)); changed == first || builds != 2 {
		t.Errorf("after a change: %d builds, body %q; want a second build", builds, changed)
	}
	get(at.Add(1700 * time.Millisecond))
	if builds != 3 {
		t.Errorf("a second later: %d builds, want 3 (the documents follow the clock too)", builds)
	}
	p.boxChanged(&events.BoxStateChanged{Box: "web", From: events.BoxOperational, To: events.BoxDegraded, Since: at})
	get(at.Add(1800 * time.Millisecond))
	if builds != 4 {
		t.Errorf("after a box's history grew: %d builds, want 4", builds)
	}
}

// Clients that accept gzip get it, the same document; a poller that has the
// document gets 304 until it changes.
func TestAPIDocumentsGzipAndETag(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC()
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: now})
	// A server not heard of yet is "operational" too: wait for the state
	// put here, up since now.
	wait.For(t, "web1 up in summary.json", func() bool {
		body, _ := s.get(t, "/api/v2/summary.json")
		return strings.Contains(body, `"name":"Websites 1","status":"operational","created_at":"`+epochStamp+`","updated_at":"`+stamp(now)+`"`)
	})

	fetch := func(header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/api/v2/summary.json", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		// A transport of its own, which neither asks for gzip nor
		// decompresses behind the test's back.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r io.Reader = resp.Body
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	plain, plainBody := fetch(nil)
	zipped, zippedBody := fetch(map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if plain.Header.Get("Content-Encoding") != "" || zipped.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q without gzip asked, %q with", plain.Header.Get("Content-Encoding"), zipped.Header.Get("Content-Encoding"))
	}
	if plainBody != zippedBody || !strings.Contains(plainBody, `"components"`) {
		t.Errorf("the gzipped document differs from the plain one")
	}
	if refused, _ := fetch(map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip sent to a client that refused it with q=0")
	}
	for _, r := range []*http.Response{plain, zipped} {
		if r.Header.Get("Vary") != "Accept-Encoding" || r.Header.Get("ETag") == "" || r.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("headers %v: want Vary: Accept-Encoding, an ETag and CORS", r.Header)
		}
	}
	if plain.Header.Get("ETag") == zipped.Header.Get("ETag") {
		t.Errorf("plain and gzipped copies share the ETag %s", plain.Header.Get("ETag"))
	}

	tag := plain.Header.Get("ETag")
	if again, body := fetch(map[string]string{"If-None-Match": tag}); again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("unchanged document with If-None-Match: %d and %d bytes, want 304 and none", again.StatusCode, len(body))
	}
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: now.Add(time.Minute)})
	wait.For(t, "web1 down in summary.json", func() bool {
		resp, body := fetch(map[string]string{"If-None-Match": tag})
		return resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != tag &&
			strings.Contains(body, `"name":"Websites 1","status":"major_outage"`)
	})
}
