package statuspage

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/affected"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/dnstest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// customerZone is what the world's DNS says of siteConfig's servers and of
// a customer whose site is on web1 and whose mail goes to mx1, then mx2.
const customerZone = `
mx1.internal.example.net.   300 IN A     192.0.2.25
web1.internal.example.net.  300 IN A     192.0.2.80
customer.example.           300 IN A     192.0.2.80
customer.example.           300 IN MX    10 mail.customer.example.
customer.example.           300 IN MX    20 backup.customer.example.
mail.customer.example.      300 IN CNAME mx1.internal.example.net.
backup.customer.example.    300 IN A     192.0.2.7
elsewhere.example.          300 IN A     203.0.113.9
`

func getAffected(t *testing.T, base, name, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/api/admin/affected?name="+url.QueryEscape(name), nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAffectedEndpoint: support staff ask the admin API about a customer
// while the mail box is down; the page answers from the state it follows
// on the bus, and only to those holding the admin token.
func TestAffectedEndpoint(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(t)
	srv := bustest.Start(t)
	s := &site{srv: srv, b: srv.Connect(t, nil), cfg: cfg}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sp := New(cfg, Deps{Bus: srv.Connect(t, nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, WithListener(ln))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sp.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	page := "http://" + ln.Addr().String()

	dns := dnstest.Start(t, customerZone)
	api := httptest.NewServer(sp.AffectedHandler(&affected.Resolver{Addr: dns.Addr, Timeout: 2 * time.Second}))
	t.Cleanup(api.Close)

	// An hour ago, but today: an outage of another day is told with its date.
	now := time.Now().UTC()
	at := now.Add(-time.Hour).Truncate(time.Minute)
	if midnight := now.Truncate(24 * time.Hour); at.Before(midnight) {
		at = midnight
	}
	s.put(t, events.BucketServers, "web1", events.ServerRecord{ID: "web1", State: events.StateUp, Since: at})
	s.put(t, events.BucketBoxes, "web", events.BoxRecord{State: events.BoxOperational, Since: at})
	const id = "20261121-ab12cd"
	s.outage(t, id, at)

	// Without the token, or with another, nothing is said: on the page's
	// own route as on the handler.
	for _, base := range []string{page, api.URL} {
		for _, token := range []string{"", "guess"} {
			if code, body := getAffected(t, base, "customer.example", token); code != http.StatusUnauthorized || strings.Contains(body, "mx1") {
				t.Errorf("%s with token %q: %d %s", base, token, code, body)
			}
		}
	}

	var a affected.Answer
	wait.For(t, "the page to know of the outage", func() bool {
		code, body := getAffected(t, api.URL, "customer.example", "s3cr3t-admin")
		if code != http.StatusOK {
			t.Fatalf("with the token: %d %s", code, body)
		}
		a = affected.Answer{}
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return strings.Contains(strings.Join(a.Summary, "\n"), "DOWN, incident")
	})
	text := strings.Join(a.Summary, "\n")
	for _, want := range []string{
		"yes: mail for customer.example is handled by mx1 and mx2 (box Incoming mail), which is DOWN, incident " + id + " since " + at.Format("15:04") + " UTC",
		"no: customer.example is served by web1 (box Websites), which is operational",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the answer lacks %q:\n%s", want, text)
		}
	}
	if a.Verdict != affected.VerdictYes || len(a.Matches) != 3 {
		t.Errorf("verdict %q, %d matches, want yes and 3: %+v", a.Verdict, len(a.Matches), a.Matches)
	}

	for _, c := range []struct {
		name string
		code int
		want string
	}{
		{"elsewhere.example", http.StatusOK, "not ours: elsewhere.example resolves to 203.0.113.9"},
		{"nothing.example", http.StatusNotFound, "does not exist"},
		{"", http.StatusBadRequest, "?name="},
		{"http://customer.example/", http.StatusBadRequest, "not a host"},
	} {
		if code, body := getAffected(t, api.URL, c.name, "s3cr3t-admin"); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("name %q: %d %s, want %d and %q", c.name, code, body, c.code, c.want)
		}
	}
}
