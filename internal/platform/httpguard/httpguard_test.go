package httpguard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestClient(t *testing.T) {
	proxies := Proxies{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:1::/48")}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy, no header", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"a client's own header is ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"through a proxy", "10.0.0.2:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"what the client wrote before the proxy's hop is ignored", "10.0.0.2:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"through two proxies", "10.0.0.2:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"headers split over lines", "10.0.0.2:4000", []string{"1.1.1.1", "198.51.100.1"}, "198.51.100.1"},
		{"a hop with a port", "10.0.0.2:4000", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"an IPv6 hop in brackets", "[2001:db8:1::9]:443", []string{"[2001:db8:2::1]"}, "2001:db8:2::1"},
		{"garbage from the proxy", "10.0.0.2:4000", []string{"not-an-address"}, "10.0.0.2"},
		{"proxy without a header", "10.0.0.2:4000", nil, "10.0.0.2"},
		{"a mapped peer", "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := proxies.Client(r).String(); got != tt.want {
				t.Errorf("client %s, want %s", got, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.5":           "203.0.113.5",
		"2001:db8:1:2:aaaa::1":  "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::99": "2001:db8:1:2::/64",
	} {
		if got := Key(netip.MustParseAddr(in)); got != want {
			t.Errorf("Key(%s) = %s, want %s", in, got, want)
		}
	}
	if got := Key(netip.Addr{}); got != "unknown" {
		t.Errorf("Key of no address = %q", got)
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := NewLimiter(1, 3, 2, nil, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d within the burst refused", i+1)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != time.Second {
		t.Errorf("past the burst: %v, wait %s; want refused, 1s", ok, wait)
	}
	for range 3 {
		if ok, _ := l.Allow("b"); !ok {
			t.Error("another client is limited by the first")
		}
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("a second later, still refused")
	}

	// The table is full (a, b): a newcomer shares the overflow bucket and
	// pushes nobody out.
	for i := range 3 {
		if ok, _ := l.Allow(fmt.Sprint("new", i)); !ok {
			t.Fatalf("newcomer %d refused within the overflow's burst", i)
		}
	}
	if ok, _ := l.Allow("new-again"); ok {
		t.Error("newcomers beyond the table are not limited together")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("a client's limit was reset by newcomers")
	}
	if n := l.Len(); n != 2 {
		t.Errorf("%d clients remembered, want the bound, 2", n)
	}

	// Once their buckets are full again, the clients are forgotten.
	now = now.Add(time.Minute)
	if ok, _ := l.Allow("c"); !ok || l.Len() != 1 {
		t.Errorf("after a minute: allowed %v, %d remembered; want c alone", ok, l.Len())
	}
}

func TestLimiterWrap(t *testing.T) {
	l := NewLimiter(0.001, 1, 10, nil, nil)
	h := l.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	get := func() *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.5:1"
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := get(); rec.Code != 200 {
		t.Fatalf("first request: %d", rec.Code)
	}
	rec := get()
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Errorf("second request: %d, Retry-After %q; want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

func TestStreams(t *testing.T) {
	s := NewStreams(3, 2)
	d1, ok1 := s.Open("a")
	_, ok2 := s.Open("a")
	_, ok3 := s.Open("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("a's streams: %v %v %v, want the third refused", ok1, ok2, ok3)
	}
	_, okB := s.Open("b")
	_, okC := s.Open("c")
	if !okB || okC {
		t.Fatalf("b %v, c %v: want c refused, all taken", okB, okC)
	}
	d1()
	d1() // twice is once
	if _, ok := s.Open("c"); !ok || s.Count() != 3 {
		t.Errorf("after one closed: c %v, %d open", ok, s.Count())
	}
}

func TestServerLimits(t *testing.T) {
	srv := Server(http.NotFoundHandler(), Limits{ReadHeaderTimeout: time.Second}, nil)
	d := DefaultLimits()
	if srv.ReadHeaderTimeout != time.Second || srv.ReadTimeout != d.ReadTimeout || srv.WriteTimeout != d.WriteTimeout ||
		srv.IdleTimeout != d.IdleTimeout || srv.MaxHeaderBytes != d.MaxHeaderBytes {
		t.Errorf("server %+v: want the read header timeout given and the defaults for the rest", srv)
	}
}

func TestHash(t *testing.T) {
	// The example of the CSP specification's hash sources.
	if got, want := Hash("alert('Hello, world.');"), "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"; got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
}
