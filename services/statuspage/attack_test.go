package statuspage

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/affected"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/dnstest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/slowconn"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The status page as an attacker on the internet sees it: every test here
// does what one could, against the page running for real on loopback.

// shortLimits cut connections within moments, so that a test waits for
// the cut rather than for seconds.
var shortLimits = httpguard.Limits{
	ReadHeaderTimeout: 300 * time.Millisecond,
	ReadTimeout:       500 * time.Millisecond,
	WriteTimeout:      500 * time.Millisecond,
	IdleTimeout:       500 * time.Millisecond,
	MaxHeaderBytes:    16 << 10,
}

func shortened(s *Service) { s.limits = shortLimits }

// TestSlowHeadersCut: a client that sends its headers a byte at a time
// (slowloris) is cut off once the header timeout passes, however steadily
// it sends.
func TestSlowHeadersCut(t *testing.T) {
	t.Parallel()
	s := startSiteWith(t, siteConfig(t), shortened)
	c := slowconn.Dial(t, s.url, "")
	request := "GET / HTTP/1.1\r\nHost: status.example.net\r\nUser-Agent: " + strings.Repeat("x", 1000) + "\r\n\r\n"
	took := slowconn.TrickleCut(t, c, request)
	t.Logf("cut after %s", took.Round(time.Millisecond))
}

// TestSlowBodyCut: a client that sends an admin update's body a byte at a
// time is cut off once the read timeout passes.
func TestSlowBodyCut(t *testing.T) {
	t.Parallel()
	s := startSiteWith(t, siteConfig(t), shortened)
	c := slowconn.Dial(t, s.url, "")
	body := `{"status":"identified","message":"` + strings.Repeat("x", 2000) + `"}`
	fmt.Fprintf(c, "POST /api/admin/incidents/20260101-abcdef/updates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cr3t-admin\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	slowconn.Trickle(c, body)
	slowconn.ClosedByServer(t, c, 10*time.Second)
}

// TestIdleConnectionClosed: a keep-alive connection left idle after a
// request is closed once the idle timeout passes, rather than held for
// ever.
func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	s := startSiteWith(t, siteConfig(t), shortened)
	c := slowconn.Dial(t, s.url, "")
	slowconn.IdleClosed(t, c, "/healthz", http.StatusOK, shortLimits.IdleTimeout)
}

// TestHugeHeaderRefused: a 1 MB header, and anything past 16 KiB, is
// refused with 431 before it costs more than that.
func TestHugeHeaderRefused(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	for _, size := range []int{1 << 20, 20 << 10} {
		if got := slowconn.HugeHeader(t, slowconn.Dial(t, s.url, ""), "/", size); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a header of %d bytes: %d, want 431", size, got)
		}
	}
	if got := slowconn.HugeHeader(t, slowconn.Dial(t, s.url, ""), "/", 4<<10); got != http.StatusOK {
		t.Errorf("a header of 4 KiB: %d, want 200", got)
	}
}

// stream is one live-update stream open on the site.
type stream struct {
	resp *http.Response
	data chan string
}

// openStream opens /events from local ("" for any address) with the
// X-Forwarded-For given ("" for none), and returns its response; the
// stream's data lines arrive on data while it is open, until the test
// ends and closes its connection.
func openStream(t *testing.T, siteURL, local, forwarded string) *stream {
	t.Helper()
	c := slowconn.Dial(t, siteURL, local)
	fmt.Fprint(c, "GET /events HTTP/1.1\r\nHost: x\r\n")
	if forwarded != "" {
		fmt.Fprintf(c, "X-Forwarded-For: %s\r\n", forwarded)
	}
	fmt.Fprint(c, "\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Time{})
	st := &stream{resp: resp, data: make(chan string, 100)}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return st
	}
	go func() {
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if d, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
				select {
				case st.data <- d:
				default: // nobody is reading them
				}
			}
		}
		close(st.data)
	}()
	return st
}

// receives waits for an event of the server named on st.
func (st *stream) receives(t *testing.T, component string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case d, ok := <-st.data:
			if !ok {
				t.Fatal("the stream ended")
			}
			if strings.Contains(d, component) {
				return
			}
		case <-timeout:
			t.Fatal("no event on the stream")
		}
	}
}

// TestStreamFloodCapped: one address opening stream after stream gets 503
// with Retry-After past its share, while its streams open before, and
// everyone else's, keep streaming, past the server's write timeout.
func TestStreamFloodCapped(t *testing.T) {
	t.Parallel()
	cfg := siteConfigWith(t, ", max_streams: 5, max_streams_per_client: 3")
	s := startSiteWith(t, cfg, shortened)
	var open []*stream
	for range 3 {
		st := openStream(t, s.url, "", "")
		if st.resp.StatusCode != 200 {
			t.Fatalf("a stream within the share: %d", st.resp.StatusCode)
		}
		open = append(open, st)
	}
	refused := openStream(t, s.url, "", "")
	if refused.resp.StatusCode != http.StatusServiceUnavailable || refused.resp.Header.Get("Retry-After") == "" {
		t.Errorf("the stream past the share: %d, Retry-After %q; want 503 with Retry-After", refused.resp.StatusCode, refused.resp.Header.Get("Retry-After"))
	}
	// Another client still gets one.
	other := openStream(t, s.url, "127.0.0.2", "")
	if other.resp.StatusCode != 200 {
		t.Errorf("another client's stream: %d", other.resp.StatusCode)
	}
	open = append(open, other)
	// Once a connection idle since then is closed, the streams have
	// outlasted the write and idle timeouts: they must still stream.
	idle := slowconn.Dial(t, s.url, "")
	fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	slowconn.ClosedByServer(t, idle, 10*time.Second)
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: time.Now()})
	for _, st := range open {
		st.receives(t, componentID("server", "web1"))
	}
	// And the overall cap holds too.
	if st := openStream(t, s.url, "127.0.0.3", ""); st.resp.StatusCode != 200 {
		t.Errorf("the fifth stream: %d", st.resp.StatusCode)
	}
	if st := openStream(t, s.url, "127.0.0.4", ""); st.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a sixth stream past max_streams: %d, want 503", st.resp.StatusCode)
	}
}

// TestStreamOfClientThatStopsReading: a client that opens a stream and
// never reads is cut off once an event cannot reach it in time, and its
// share is free again.
func TestStreamOfClientThatStopsReading(t *testing.T) {
	t.Parallel()
	cfg := siteConfigWith(t, ", max_streams_per_client: 1")
	s := startSiteWith(t, cfg, func(s *Service) {
		s.limits, s.eventWrite = shortLimits, 200*time.Millisecond
		s.ln = smallSendBuffers{s.ln} // as a busy machine has: else loopback buffers megabytes
	})
	// A small receive window, set before connecting, so that the page's
	// writes fill it soon.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024) }); cerr != nil {
			return cerr
		}
		return err
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	// Changes, many and large enough to fill every buffer between the page
	// and the client, until the page gives the client up.
	wait.Within(t, 30*time.Second, "the stream of a client that reads nothing to be cut", func() bool {
		for i := range 20 {
			s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateDown, Since: time.Now().Add(time.Duration(i) * time.Second)})
		}
		return openStream(t, s.url, "", "").resp.StatusCode == 200
	})
	slowconn.ClosedByServer(t, c, 10*time.Second) // what it had not read, then the end
}

// TestForwardedForTrustedOnlyFromProxies: X-Forwarded-For names the client
// only on a request from a configured proxy: a client cannot escape its
// limits by naming another address, and clients behind the proxy each
// have their own.
func TestForwardedForTrustedOnlyFromProxies(t *testing.T) {
	t.Parallel()
	cfg := siteConfigWith(t, ", trusted_proxies: [127.0.0.2], max_streams_per_client: 2")
	s := startSiteWith(t, cfg, shortened)
	for i := range 2 {
		if st := openStream(t, s.url, "127.0.0.1", fmt.Sprintf("198.51.100.%d", i)); st.resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, st.resp.StatusCode)
		}
	}
	if st := openStream(t, s.url, "127.0.0.1", "198.51.100.99"); st.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a client not a proxy named a new address and got a stream past its share: %d", st.resp.StatusCode)
	}

	// Through the proxy: 198.51.100.1 has its share, 198.51.100.2 its own.
	for i := range 2 {
		if st := openStream(t, s.url, "127.0.0.2", "198.51.100.1"); st.resp.StatusCode != 200 {
			t.Fatalf("stream %d of a client behind the proxy: %d", i, st.resp.StatusCode)
		}
	}
	if st := openStream(t, s.url, "127.0.0.2", "6.6.6.6, 198.51.100.1"); st.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a client behind the proxy escaped its share by writing its own X-Forwarded-For: %d", st.resp.StatusCode)
	}
	if st := openStream(t, s.url, "127.0.0.2", "198.51.100.2"); st.resp.StatusCode != 200 {
		t.Errorf("another client behind the proxy: %d", st.resp.StatusCode)
	}
	// IPv6 clients count by their /64.
	if st := openStream(t, s.url, "127.0.0.2", "2001:db8:1:2::1"); st.resp.StatusCode != 200 {
		t.Fatal(st.resp.StatusCode)
	}
	if st := openStream(t, s.url, "127.0.0.2", "2001:db8:1:2::2"); st.resp.StatusCode != 200 {
		t.Fatal(st.resp.StatusCode)
	}
	if st := openStream(t, s.url, "127.0.0.2", "2001:db8:1:2:ffff::3"); st.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("an IPv6 client escaped its share with a new address in its /64: %d", st.resp.StatusCode)
	}
}

// TestSecurityHeaders: the page may not be framed or sniffed and runs only
// its own script and style; the API, the feed and the banner stay
// readable from any origin.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	page, hdr := s.get(t, "/")
	csp := hdr.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("the page's policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("the page's policy allows inline code: %q", csp)
	}
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if style == nil || !strings.Contains(csp, httpguard.Hash(style[1])) {
		t.Errorf("the page's style sheet is not the one its policy allows")
	}
	if regexp.MustCompile(`<script>|<script[^>]*>[^<]|\sstyle="|\son[a-z]+=`).MatchString(page) {
		t.Errorf("the page has inline script, style or handlers, which its policy refuses:\n%s", page)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
		if got := hdr.Get(name); got != want {
			t.Errorf("the page's %s: %q, want %q", name, got, want)
		}
	}
	if js, hdr := s.get(t, "/page.js"); !strings.Contains(js, "EventSource") || !strings.Contains(hdr.Get("Content-Type"), "javascript") {
		t.Errorf("/page.js: %s", hdr.Get("Content-Type"))
	}
	for _, path := range []string{"/api/v2/summary.json", "/api/v2/status.json", "/feed.atom", "/banner.js", "/banner.json"} {
		_, hdr := s.get(t, path)
		if hdr.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: nosniff %q, policy %q", path, hdr.Get("X-Content-Type-Options"), hdr.Get("Content-Security-Policy"))
		}
		if hdr.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s is no longer readable from any origin", path)
		}
	}
}

// internalWord is what the config keeps from the public: server ids and
// hosts, as words.
var internalWord = regexp.MustCompile(`(?i)(^|[^a-z0-9])(mx1|mx2|web1|web2|mx1\.internal\.example\.net|web1\.internal\.example\.net|internal\.example\.net)([^a-z0-9-]|$)`)

// TestUnscrubbedNoteNeverPublished: a staff update and a maintenance
// reason naming internal hosts, server ids and addresses reach the page,
// the API, the feed and the banner without them.
func TestUnscrubbedNoteNeverPublished(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC().Add(-time.Hour)
	id := now.Format("20060102") + "-leak01"
	s.outage(t, id, now)
	note := "mx1.internal.example.net lost its disk; MX2 (192.0.2.7:25) and web1 rebooting, gateway 10.20.30.40 and [2001:db8::42]:443 too. Mail is queued."
	if err := s.b.Publish(context.Background(), events.New(id+"/note/1", "tocsin", now.Add(time.Minute),
		&events.IncidentNote{Incident: id, Seq: 1, Status: events.NoteIdentified, Message: note, By: "Alice", At: now.Add(time.Minute)})); err != nil {
		t.Fatal(err)
	}
	s.put(t, events.BucketMaintenance, "disk", events.MaintenanceSet{Maintenance: "disk", Servers: []string{"web1", "web2"}, Boxes: []string{"web"}, Public: true,
		From: time.Now().Add(time.Hour), Until: time.Now().Add(2 * time.Hour), Reason: "Disk swap on web1.internal.example.net (fe80::1%eth0, 172.16.0.9)"})
	s.put(t, events.BucketBanner, events.BannerKey, events.Banner{On: true, Message: "Problems with mx1 at 192.0.2.7", Since: time.Now()})
	wait.For(t, "the note and the window on the page", func() bool {
		page, _ := s.get(t, "/")
		return strings.Contains(page, "Mail is queued") && strings.Contains(page, "Disk swap on") && strings.Contains(page, "Problems with")
	})
	for _, path := range []string{"/", "/api/v2/summary.json", "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json",
		"/api/v2/scheduled-maintenances.json", "/api/v2/scheduled-maintenances/upcoming.json", "/feed.atom", "/banner.json"} {
		body, _ := s.get(t, path)
		if m := internalWord.FindString(body); m != "" {
			t.Errorf("%s names %q", path, m)
		}
		for _, addr := range []string{"192.0.2.7", "10.20.30.40", "2001:db8::42", "fe80::1", "172.16.0.9"} {
			if strings.Contains(body, addr) {
				t.Errorf("%s shows the address %s", path, addr)
			}
		}
	}
	if page, _ := s.get(t, "/"); !strings.Contains(page, "a server lost its disk; a server (a server) and a server rebooting, gateway a server and a server too. Mail is queued.") {
		t.Errorf("the page does not show the note scrubbed:\n%s", page)
	}
}

// TestPublicIncidentIDsOpaque: the id the public know an incident by holds
// neither its id nor the code that acknowledges it by SMS, in the API, the
// feed or the page; it is the same after a restart; staff may use it.
func TestPublicIncidentIDsOpaque(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(t)
	cfg.Statuspage.IDKey = config.Secret{} // the page keeps a key of its own
	srv := bustest.Start(t)
	s := &site{srv: srv, b: srv.Connect(t, nil), cfg: cfg}
	state := filepath.Join(t.TempDir(), "statuspage.json")
	url, stop := runPage(t, cfg, srv.Connect(t, nil), state)
	s.url = url
	now := time.Now().UTC().Add(-time.Hour)
	code := "k3f9x2"
	id := now.Format("20060102") + "-" + code
	s.outage(t, id, now)
	s.put(t, events.BucketIncidents, id, map[string]any{"id": id})
	var list struct {
		Incidents []struct {
			ID              string
			IncidentUpdates []struct {
				ID         string
				IncidentID string `json:"incident_id"`
			} `json:"incident_updates"`
		}
	}
	wait.For(t, "the incident on the API", func() bool {
		body, _ := s.get(t, "/api/v2/incidents/unresolved.json")
		list.Incidents = nil
		return json.Unmarshal([]byte(body), &list) == nil && len(list.Incidents) == 1
	})
	public := list.Incidents[0].ID
	if strings.Contains(public, code) || public == componentID("incident", id) {
		t.Errorf("public id %q gives the code %q away", public, code)
	}
	for _, u := range list.Incidents[0].IncidentUpdates {
		if u.IncidentID != public || strings.Contains(u.ID, code) {
			t.Errorf("update %+v", u)
		}
	}
	for _, path := range []string{"/", "/api/v2/summary.json", "/api/v2/incidents.json", "/feed.atom"} {
		if body, _ := s.get(t, path); strings.Contains(body, code) {
			t.Errorf("%s shows the acknowledgement code", path)
		}
	}
	if fi, err := os.Stat(idKeyFile(state)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the page's key: %v, %v; want a file only its owner reads", fi, err)
	}

	// Staff name it as the page does.
	req, _ := http.NewRequest("POST", s.url+"/api/admin/incidents/"+public+"/updates", strings.NewReader(`{"status":"identified","message":"A disk failed."}`))
	req.Header.Set("Authorization", "Bearer s3cr3t-admin")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("an update to the incident by its public id: %d", resp.StatusCode)
	}

	stop()
	s.url, _ = runPage(t, cfg, srv.Connect(t, nil), state)
	wait.For(t, "the restarted page with the update", func() bool {
		body, _ := s.get(t, "/api/v2/incidents/unresolved.json")
		list.Incidents = nil
		return json.Unmarshal([]byte(body), &list) == nil && len(list.Incidents) == 1 && len(list.Incidents[0].IncidentUpdates) == 2
	})
	if got := list.Incidents[0].ID; got != public {
		t.Errorf("after a restart the incident is %q, was %q", got, public)
	}

	// A page with another key gives other ids: the key is what makes them.
	other := newPage(cfg, time.Now)
	if other.publicID("incident", id) == public {
		t.Error("a page with another key gives the same id")
	}
}

// TestAdminAPIRateLimited: calls to the admin API past the limit of one
// address get 429 with Retry-After, whether the token is right or not;
// another address is not held up.
func TestAdminAPIRateLimited(t *testing.T) {
	t.Parallel()
	cfg := siteConfigWith(t, ", trusted_proxies: [127.0.0.2]")
	s := startSiteWith(t, cfg, nil)
	guess := func(local, forwarded string) *http.Response {
		c := slowconn.Dial(t, s.url, local)
		fmt.Fprint(c, "POST /api/admin/incidents/20260101-abcdef/updates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\nContent-Length: 2\r\n")
		if forwarded != "" {
			fmt.Fprintf(c, "X-Forwarded-For: %s\r\n", forwarded)
		}
		fmt.Fprint(c, "\r\n{}")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var limited *http.Response
	for range 3 * adminBurst {
		if resp := guess("127.0.0.1", "203.0.113.9"); resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		} else if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a wrong token: %d", resp.StatusCode)
		}
	}
	if limited == nil {
		t.Fatalf("%d guesses at the token from one address, none limited", 3*adminBurst)
	}
	if limited.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if resp := guess("127.0.0.2", "198.51.100.7"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another client, behind the proxy: %d, want 401", resp.StatusCode)
	}
	// The affected check is held to the same limit.
	affected := func() int {
		c := slowconn.Dial(t, s.url, "127.0.0.3")
		fmt.Fprint(c, "GET /api/admin/affected?name=example.com HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer guess\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; affected() != http.StatusTooManyRequests; i++ {
		if i == 3*adminBurst {
			t.Fatalf("%d calls to the affected check from one address, none limited", i)
		}
	}
}

// smallSendBuffers gives each connection it accepts a small send buffer,
// which a client that does not read fills soon.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// FuzzAdminUpdate: whatever id and body a holder of the token sends, the
// admin API answers 201, 400 or 404, never fails otherwise, and what it
// stores is a valid note.
func FuzzAdminUpdate(f *testing.F) {
	cfg := siteConfig(f)
	srv := bustest.Start(f)
	b := srv.Connect(f, nil)
	const id = "20260101-fuzz01"
	bustest.Put(f, b, events.BucketIncidents, id, map[string]any{"id": id})
	sp := New(cfg, Deps{Bus: srv.Connect(f, nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sp.admin = httpguard.NewLimiter(1e9, 1e9, 1, nil, nil) // the fuzzer is one client, and no attacker
	h := sp.Handler()
	for _, seed := range []struct {
		id   string
		body string
	}{
		{id, `{"status":"identified","message":"A disk failed on mx1 (10.0.0.7).","by":"Alice"}`},
		{id, `{"status":"nonsense","message":""}`},
		{"20990101-nobody", `{"status":"resolved","message":"ok"}`},
		{"../../etc", `{"status":`},
		{id, `{"status":"monitoring","message":"` + strings.Repeat("x", 70<<10) + `"}`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, incident string, body []byte) {
		req := httptest.NewRequest("POST", "/api/admin/incidents/x/updates", bytes.NewReader(body))
		req.URL.Path = "/api/admin/incidents/" + incident + "/updates"
		req.Header.Set("Authorization", "Bearer s3cr3t-admin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusCreated:
			var n events.IncidentNote
			if err := json.Unmarshal(rec.Body.Bytes(), &n); err != nil || n.Validate() != nil || n.Incident != id {
				t.Errorf("stored %s for %q: %v", rec.Body, incident, err)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed,
			http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect: // the mux cleaning the path
		default:
			t.Errorf("%q, %q: %d %s", incident, body, rec.Code, rec.Body)
		}
	})
}

// FuzzAffected: whatever name support staff ask about, the check answers
// 200, 400, 404 or 502 (the DNS did not answer), and never fails
// otherwise.
func FuzzAffected(f *testing.F) {
	cfg := siteConfig(f)
	srv := bustest.Start(f)
	sp := New(cfg, Deps{Bus: srv.Connect(f, nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	dns := dnstest.Start(f, customerZone)
	h := sp.AffectedHandler(&affected.Resolver{Addr: dns.Addr, Timeout: 2 * time.Second})
	for _, seed := range []string{"customer.example", "mail.customer.example", "elsewhere.example", "nowhere.example", "", "a..b", "xn--80ak6aa92e.com", strings.Repeat("a.", 200)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		req := httptest.NewRequest("GET", "/api/admin/affected?name="+url.QueryEscape(name), nil)
		req.Header.Set("Authorization", "Bearer s3cr3t-admin")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusBadGateway:
		default:
			t.Errorf("%q: %d %s", name, rec.Code, rec.Body)
		}
	})
}

// TestExportOpaqueAndPolicied: a static copy names incidents by the same
// opaque ids as the live page (the key is the config's), shows staff's
// words scrubbed, and carries the page's policy in a meta element for a
// host that sends none.
func TestExportOpaqueAndPolicied(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	now := time.Now().UTC().Add(-time.Hour)
	id := now.Format("20060102") + "-exp0rt"
	s.outage(t, id, now)
	if err := s.b.Publish(context.Background(), events.New(id+"/note/1", "tocsin", now.Add(time.Minute),
		&events.IncidentNote{Incident: id, Seq: 1, Status: events.NoteIdentified, Message: "mx1 at 192.0.2.7 lost a disk", By: "Alice", At: now.Add(time.Minute)})); err != nil {
		t.Fatal(err)
	}
	var live struct{ Incidents []struct{ ID string } }
	wait.For(t, "the incident and its note on the live page", func() bool {
		body, _ := s.get(t, "/api/v2/incidents.json")
		live.Incidents = nil
		return strings.Contains(body, "a server at a server lost a disk") && json.Unmarshal([]byte(body), &live) == nil && len(live.Incidents) == 1
	})
	dir, index := s.export(t)
	meta := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]*)">`).FindSubmatch(index)
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindSubmatch(index)
	if meta == nil || style == nil || !strings.Contains(html.UnescapeString(string(meta[1])), httpguard.Hash(string(style[1]))) ||
		!strings.Contains(html.UnescapeString(string(meta[1])), "default-src 'none'") {
		t.Errorf("the static copy carries no policy that allows its style sheet:\n%s", index)
	}
	incidents, err := os.ReadFile(filepath.Join(dir, "api/v2/incidents.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(incidents), `"id":"`+live.Incidents[0].ID+`"`) || strings.Contains(string(incidents), "exp0rt") {
		t.Errorf("the static copy's incidents.json does not name the incident %s as the live page does:\n%s", live.Incidents[0].ID, incidents)
	}
	for _, name := range []string{"index.html", "api/v2/incidents.json", "feed.atom"} {
		b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if strings.Contains(string(b), "192.0.2.7") || internalWord.Match(b) {
			t.Errorf("the static copy's %s names something internal", name)
		}
	}
}
