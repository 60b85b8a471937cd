package rdap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/testkit/clock"
)

// fixture is an RDAP answer from testdata, with the registrar's RDAP host
// the fixtures name replaced by registrar's URL.
func fixture(t testing.TB, name, registrar string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "https://rdap.registrar.example", registrar)
}

// registry serves RDAP domain answers as a registry does: under any base
// path, GET only, to clients that accept RDAP JSON, with an RDAP error body
// and 404 for a domain it does not hold.
func registry(t *testing.T, tls bool, domains map[string]string) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !strings.Contains(r.Header.Get("Accept"), "application/rdap+json") {
			http.Error(w, "not acceptable", http.StatusNotAcceptable)
			return
		}
		i := strings.LastIndex(r.URL.Path, "/domain/")
		if i < 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		body, ok := domains[strings.ToLower(r.URL.Path[i+len("/domain/"):])]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"rdapConformance":["rdap_level_0"],"errorCode":404,"title":"Not Found","description":["The domain is not registered."]}`)
			return
		}
		fmt.Fprint(w, body)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// server is a loopback HTTP server that answers with h.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func host(srv *httptest.Server) string { return srv.Listener.Addr().String() }

// bootstrapFile is an RFC 9224 file in the shape IANA publishes.
func bootstrapFile(t testing.TB, services [][2][]string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"description": "RDAP bootstrap file for Domain Name System registrations",
		"publication": "2025-06-02T18:00:01Z",
		"services":    services,
		"version":     "1.0",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// world is a bootstrap server and the registries it names, all on loopback.
type world struct {
	client *Client
	clock  *clock.Manual
	hits   atomic.Int32 // requests for the bootstrap file

	bootstrap                         *httptest.Server
	net, com, registrar, uk, couk, de *httptest.Server // registries by TLD, and a registrar
	example, org                      *httptest.Server // .org only behind three redirects
	hops, failing, big, slow, trickle *httptest.Server // servers that misbehave, each its own way
}

type worldOptions struct {
	ttl time.Duration
	// refuse, if set, is asked before the bootstrap file is served for the
	// nth time, and answers with the status it returns unless that is 0.
	refuse func(n int32, r *http.Request) int
}

func newWorld(t *testing.T, opts worldOptions) *world {
	t.Helper()
	w := &world{clock: clock.New(time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC))}

	w.registrar = registry(t, false, map[string]string{
		"example.com": fixture(t, "registrar-example.com.json", ""),
	})
	w.net = registry(t, true, map[string]string{
		"example.net": fixture(t, "example.net.json", w.registrar.URL),
	})
	w.com = registry(t, false, map[string]string{
		"example.com": fixture(t, "example.com.json", w.registrar.URL),
		// The registry has it; the registrar has lost it.
		"lost.com": strings.ReplaceAll(fixture(t, "example.com.json", w.registrar.URL), "EXAMPLE.COM", "LOST.COM"),
	})
	w.uk = registry(t, false, map[string]string{"example.uk": fixture(t, "example.uk.json", "")})
	w.couk = registry(t, false, map[string]string{"example.co.uk": fixture(t, "example.co.uk.json", "")})
	w.de = registry(t, false, map[string]string{"example.de": fixture(t, "example.de.json", "")})
	w.example = registry(t, false, map[string]string{"xn--bcher-kva.example": fixture(t, "xn--bcher-kva.example.json", "")})
	w.org = registry(t, false, map[string]string{
		"example.org": strings.ReplaceAll(fixture(t, "example.net.json", w.registrar.URL), "EXAMPLE.NET", "EXAMPLE.ORG"),
	})
	// hops redirects /hops/N/domain/x to /hops/N-1/domain/x, and
	// /hops/1/domain/x to the org registry: N redirects in all.
	w.hops = server(t, func(rw http.ResponseWriter, r *http.Request) {
		var n int
		var rest string
		if _, err := fmt.Sscanf(r.URL.Path, "/hops/%d/%s", &n, &rest); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		to := fmt.Sprintf("/hops/%d/%s", n-1, rest)
		if n == 1 {
			to = w.org.URL + "/" + rest
		}
		http.Redirect(rw, r, to, http.StatusFound)
	})
	w.failing = server(t, func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "maintenance", http.StatusServiceUnavailable)
	})
	w.big = server(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/rdap+json")
		fmt.Fprint(rw, `{"objectClassName":"domain","ldhName":"example.big","remarks":[{"description":["`)
		rw.Write([]byte(strings.Repeat("a", 1<<20)))
		fmt.Fprint(rw, `"]}],"events":[{"eventAction":"expiration","eventDate":"2030-01-01T00:00:00Z"}]}`)
	})
	// slow stalls before it answers, trickle in the middle of its answer,
	// until the client gives up or the test ends.
	release := make(chan struct{})
	w.slow = server(t, func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	w.trickle = server(t, func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/rdap+json")
		fmt.Fprint(rw, `{"objectClassName":"domain","ldhName":"example.trickle","events":[`)
		rw.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before the servers close: cleanups run last first

	// .net lists a plain-HTTP server that must not be asked, since an
	// HTTPS one is listed too; uk comes before co.uk, so that the first
	// match is not the longest.
	decoy := server(t, func(rw http.ResponseWriter, r *http.Request) {
		t.Errorf("asked %s over plain HTTP though HTTPS was listed", r.URL.Path)
		http.Error(rw, "decoy", http.StatusTeapot)
	})
	file := bootstrapFile(t, [][2][]string{
		{{"net"}, {decoy.URL + "/net/v1/", w.net.URL + "/net/v1/"}},
		{{"com"}, {w.com.URL + "/com/v1/"}},
		{{"uk"}, {w.uk.URL + "/uk/"}},
		{{"co.uk", "org.uk"}, {w.couk.URL + "/uk/"}},
		{{"de"}, {w.de.URL + "/"}},
		{{"example"}, {w.example.URL + "/rdap/"}},
		{{"org"}, {w.hops.URL + "/hops/3/"}},
		{{"info"}, {w.hops.URL + "/hops/4/"}},
		{{"fail"}, {w.failing.URL + "/"}},
		{{"big"}, {w.big.URL + "/"}},
		{{"slow"}, {w.slow.URL + "/"}},
		{{"trickle"}, {w.trickle.URL + "/"}},
	})
	w.bootstrap = server(t, func(rw http.ResponseWriter, r *http.Request) {
		n := w.hits.Add(1)
		if opts.refuse != nil {
			if code := opts.refuse(n, r); code != 0 {
				http.Error(rw, http.StatusText(code), code)
				return
			}
		}
		if r.URL.Path != "/rdap/dns.json" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(file)
	})

	w.client = New(Options{
		BootstrapURL: w.bootstrap.URL + "/rdap/dns.json",
		HTTP:         w.net.Client(), // trusts every httptest TLS server
		Now:          w.clock.Now,
		BootstrapTTL: opts.ttl,
	})
	return w
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestExpiry(t *testing.T) {
	w := newWorld(t, worldOptions{})
	tests := []struct {
		name     string
		domain   string
		want     time.Time
		err      string
		notFound bool
	}{
		{name: "the registry gives the date", domain: "example.net", want: date("2028-03-01T05:00:00Z")},
		{name: "upper case and a final dot", domain: "Example.NET.", want: date("2028-03-01T05:00:00Z")},
		{name: "co.uk is asked rather than uk", domain: "example.co.uk", want: date("2026-11-03T00:00:00Z")},
		{name: "a name right under uk is asked of uk", domain: "example.uk", want: date("2027-06-10T00:00:00Z")},
		{name: "a thin registry sends us to the registrar", domain: "example.com", want: date("2026-08-13T04:00:00Z")},
		{name: "an internationalised name is asked in ASCII", domain: "bücher.example", want: date("2027-02-28T17:11:03.2Z")},
		{name: "three redirects are followed", domain: "example.org", want: date("2028-03-01T05:00:00Z")},
		{
			name:   "a fourth redirect is not",
			domain: "example.info",
			err:    fmt.Sprintf("asking %s: more than 3 redirects", host(w.hops)),
		},
		{
			name:   "a TLD the bootstrap does not list",
			domain: "example.test",
			err:    "no RDAP server for .test in the IANA bootstrap",
		},
		{
			name:     "a domain the registry does not hold",
			domain:   "unregistered.net",
			err:      fmt.Sprintf("%s answered 404: domain not found", host(w.net)),
			notFound: true,
		},
		{
			name:   "a registry that fails",
			domain: "example.fail",
			err:    fmt.Sprintf("%s answered 503: service unavailable", host(w.failing)),
		},
		{
			name:   "an answer over 1 MiB",
			domain: "example.big",
			err:    fmt.Sprintf("%s sent an answer larger than 1 MiB", host(w.big)),
		},
		{
			name:   "a registry that publishes no date",
			domain: "example.de",
			err:    fmt.Sprintf("no expiration date in the registration at %s", host(w.de)),
		},
		{
			// Not ErrNotFound: the domain is registered, whatever the
			// registrar says.
			name:   "a registrar that does not know the domain",
			domain: "lost.com",
			err:    fmt.Sprintf("no expiration date in the registration at %s, and the registrar's %s answered 404", host(w.com), host(w.registrar)),
		},
		{
			name:   "not a domain name",
			domain: "example.net/../../admin",
			err:    `"example.net/../../admin" is not a domain name: idna: disallowed rune U+002F`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.client.Expiry(t.Context(), tt.domain)
			if tt.err == "" {
				if err != nil {
					t.Fatalf("Expiry(%q): %v", tt.domain, err)
				}
				if !got.Equal(tt.want) {
					t.Errorf("Expiry(%q) = %v, want %v", tt.domain, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Expiry(%q) = %v, want error %q", tt.domain, got, tt.err)
			}
			if err.Error() != tt.err {
				t.Errorf("Expiry(%q) error\n got: %s\nwant: %s", tt.domain, err, tt.err)
			}
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%q, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
		})
	}
}

func TestExpiryStall(t *testing.T) {
	w := newWorld(t, worldOptions{})
	tests := []struct {
		name   string
		domain string
		server *httptest.Server
	}{
		{name: "before it answers", domain: "example.slow", server: w.slow},
		{name: "in the middle of its answer", domain: "example.trickle", server: w.trickle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Fetch the bootstrap first, so that the deadline falls on the
			// registry.
			if _, err := w.client.bootstrap(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := w.client.Expiry(ctx, tt.domain)
			want := fmt.Sprintf("%s did not answer in time: context deadline exceeded", host(tt.server))
			if err == nil || err.Error() != want {
				t.Fatalf("Expiry(%q) error = %v, want %q", tt.domain, err, want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("errors.Is(%q, context.DeadlineExceeded) = false", err)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(%q, ErrNotFound) = true", err)
			}
		})
	}
}

func TestBootstrapCache(t *testing.T) {
	tests := []struct {
		name string
		ttl  time.Duration
		want time.Duration
	}{
		{name: "default TTL", ttl: 0, want: 24 * time.Hour},
		{name: "an hour", ttl: time.Hour, want: time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{ttl: tt.ttl})
			steps := []struct {
				advance time.Duration
				hits    int32
			}{
				{0, 1},
				{0, 1},
				{tt.want - time.Second, 1},
				{time.Second, 2},
				{tt.want / 2, 2},
			}
			for i, s := range steps {
				w.clock.Advance(s.advance)
				if _, err := w.client.Expiry(t.Context(), "example.net"); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if got := w.hits.Load(); got != s.hits {
					t.Errorf("step %d: the bootstrap was fetched %d times, want %d", i, got, s.hits)
				}
			}
		})
	}
}

func TestBootstrapSharedByConcurrentCallers(t *testing.T) {
	w := newWorld(t, worldOptions{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := w.client.Expiry(t.Context(), "example.net"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := w.hits.Load(); got != 1 {
		t.Errorf("the bootstrap was fetched %d times, want 1", got)
	}
}

func TestBootstrapFailureIsNotCached(t *testing.T) {
	w := newWorld(t, worldOptions{refuse: func(n int32, r *http.Request) int {
		if n == 1 {
			return http.StatusBadGateway
		}
		return 0
	}})
	_, err := w.client.Expiry(t.Context(), "example.net")
	want := fmt.Sprintf("reading the RDAP bootstrap: %s answered 502: bad gateway", host(w.bootstrap))
	if err == nil || err.Error() != want {
		t.Fatalf("first Expiry error = %v, want %q", err, want)
	}
	if _, err := w.client.Expiry(t.Context(), "example.net"); err != nil {
		t.Fatalf("second Expiry: %v", err)
	}
	if got := w.hits.Load(); got != 2 {
		t.Errorf("the bootstrap was fetched %d times, want 2", got)
	}
}

// A caller that gives up while the bootstrap is being fetched for it must
// not fail the callers that were waiting for the same fetch.
func TestBootstrapCallerGivingUp(t *testing.T) {
	arrived := make(chan struct{})
	w := newWorld(t, worldOptions{refuse: func(n int32, r *http.Request) int {
		if n == 1 {
			close(arrived)
			<-r.Context().Done()
			return http.StatusServiceUnavailable
		}
		return 0
	}})
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := w.client.Expiry(ctx, "example.net")
		first <- err
	}()
	<-arrived
	second := make(chan error, 1)
	go func() {
		_, err := w.client.Expiry(t.Context(), "example.net")
		second <- err
	}()
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller that gave up got %v, want context.Canceled", err)
	}
	if err := <-second; err != nil {
		t.Errorf("the caller that waited got %v", err)
	}
}

func TestBootstrapErrors(t *testing.T) {
	tests := []struct {
		name string
		h    http.HandlerFunc
		err  string // after "reading the RDAP bootstrap"
	}{
		{
			// A 404 of the bootstrap says nothing about the domain.
			name: "not found",
			h:    http.NotFound,
			err:  ": HOST answered 404: not found",
		},
		{
			name: "not JSON",
			h: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, "<html><body>Sign in to the hotel Wi-Fi</body></html>")
			},
			err: " from HOST: not a bootstrap file: invalid character '<' looking for beginning of value",
		},
		{
			name: "no services",
			h: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"version":"1.0","publication":"2025-06-02T18:00:01Z","services":[]}`)
			},
			err: " from HOST: the file lists no RDAP servers",
		},
		{
			name: "only base URLs that are not HTTP",
			h: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"services":[[["net"],["ftp://rdap.example/","rdap.example/"]]]}`)
			},
			err: " from HOST: the file lists no RDAP servers",
		},
		{
			name: "over 4 MiB",
			h: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"services":[`)
				for range 1 << 17 {
					fmt.Fprint(w, `[["net"],["https://rdap.example/"]],`)
				}
				fmt.Fprint(w, `[["com"],["https://rdap.example/"]]]}`)
			},
			err: ": HOST sent an answer larger than 4 MiB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := server(t, tt.h)
			c := New(Options{BootstrapURL: srv.URL + "/rdap/dns.json"})
			_, err := c.Expiry(t.Context(), "example.net")
			want := "reading the RDAP bootstrap" + strings.ReplaceAll(tt.err, "HOST", host(srv))
			if err == nil || err.Error() != want {
				t.Fatalf("Expiry error\n got: %v\nwant: %s", err, want)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("errors.Is(%q, ErrNotFound) = true", err)
			}
		})
	}
}

func TestServerFor(t *testing.T) {
	servers, err := parseBootstrap(bootstrapFile(t, [][2][]string{
		{{"uk"}, {"https://rdap.uk.example/"}},
		{{"CO.UK."}, {"http://rdap.co-uk.example/", "https://rdap.co-uk.example/"}},
		{{"xn--p1ai"}, {"https://rdap.rf.example/"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want string
	}{
		{name: "example.co.uk", want: "https://rdap.co-uk.example/"},
		{name: "www.example.co.uk", want: "https://rdap.co-uk.example/"},
		{name: "example.uk", want: "https://rdap.uk.example/"},
		{name: "example.xn--p1ai", want: "https://rdap.rf.example/"},
		{name: "co.uk", want: "https://rdap.co-uk.example/"},
		{name: "example.com", want: ""},
		{name: "example.kuk", want: ""},
	}
	for _, tt := range tests {
		var got string
		if u := serverFor(servers, tt.name); u != nil {
			got = u.String()
		}
		if got != tt.want {
			t.Errorf("serverFor(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestNormalise(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" for an error
	}{
		{in: "example.net", want: "example.net"},
		{in: "Example.NET.", want: "example.net"},
		{in: "example.co.uk", want: "example.co.uk"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "straße.de", want: "xn--strae-oqa.de"},
		{in: "例え.jp", want: "xn--r8jz45g.jp"},
		{in: "пример.рф", want: "xn--e1afmkfd.xn--p1ai"},
		{in: "3com.com", want: "3com.com"},
		{in: ""},
		{in: "."},
		{in: "net"},
		{in: "localhost"},
		{in: "192.0.2.1"},
		{in: "example..net"},
		{in: ".example.net"},
		{in: "example.net.."},
		{in: "-example.net"},
		{in: "example-.net"},
		{in: "exa mple.net"},
		{in: " example.net"},
		{in: "example.net/whois"},
		{in: "https://example.net"},
		{in: "user@example.net"},
		{in: "*.example.net"},
		{in: "_dmarc.example.net"},
		{in: "example.net?x=1"},
		{in: "example.net%2f"},
		{in: strings.Repeat("a", 64) + ".net"},
		{in: strings.Repeat("a.", 127) + "net"},
		{in: "xn--zz.example"},
	}
	for _, tt := range tests {
		got, err := Normalise(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("Normalise(%q) = %q, want an error", tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("Normalise(%q): %v", tt.in, err)
		case got != tt.want:
			t.Errorf("Normalise(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		body string
		want registration
		err  string
	}{
		{
			name: "thick registry",
			body: fixture(t, "example.net.json", "https://rdap.registrar.example"),
			want: registration{
				Name:      "EXAMPLE.NET",
				Expiry:    date("2028-03-01T05:00:00Z"),
				Registrar: "https://rdap.registrar.example/domain/EXAMPLE.NET",
			},
		},
		{
			name: "thin registry",
			body: fixture(t, "example.com.json", "https://rdap.registrar.example"),
			want: registration{Name: "EXAMPLE.COM", Registrar: "https://rdap.registrar.example/domain/EXAMPLE.COM"},
		},
		{
			name: "registrar, with a registrar expiration too",
			body: fixture(t, "registrar-example.com.json", ""),
			want: registration{
				Name:      "example.com",
				Expiry:    date("2026-08-13T04:00:00Z"),
				Registrar: "https://rdap.verisign.com/com/v1/domain/example.com",
			},
		},
		{
			name: "Nominet",
			body: fixture(t, "example.co.uk.json", ""),
			want: registration{Name: "example.co.uk", Expiry: date("2026-11-03T00:00:00Z")},
		},
		{
			name: "no expiration published",
			body: fixture(t, "example.de.json", ""),
			want: registration{Name: "example.de"},
		},
		{
			name: "an offset is turned into UTC",
			body: `{"objectClassName":"domain","events":[{"eventAction":"expiration","eventDate":"2027-01-01T00:00:00+01:00"}]}`,
			want: registration{Expiry: date("2026-12-31T23:00:00Z")},
		},
		{
			name: "only an RDAP link to the registrar counts",
			body: `{"links":[
				{"rel":"related","type":"text/html","href":"https://registrar.example/whois"},
				{"rel":"self","type":"application/rdap+json","href":"https://rdap.registry.example/domain/example.net"},
				{"rel":"related","type":"application/rdap+json; charset=utf-8","href":"https://rdap.registrar.example/domain/example.net"}]}`,
			want: registration{Registrar: "https://rdap.registrar.example/domain/example.net"},
		},
		{
			name: "not JSON",
			body: "<html><body>Too many requests</body></html>",
			err:  "not RDAP JSON: invalid character '<' looking for beginning of value",
		},
		{
			name: "an entity, not a domain",
			body: `{"objectClassName":"entity","handle":"1234","roles":["registrar"]}`,
			err:  `an answer about a "entity", not a domain`,
		},
		{
			name: "a date that is not RFC 3339",
			body: `{"events":[{"eventAction":"expiration","eventDate":"2027-01-01"}]}`,
			err:  `expiration date "2027-01-01" is not an RFC 3339 time`,
		},
		{
			name: "a long bad date is cut short",
			body: `{"events":[{"eventAction":"expiration","eventDate":"` + strings.Repeat("9", 1000) + `"}]}`,
			err:  `expiration date "` + strings.Repeat("9", 40) + `" is not an RFC 3339 time`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse([]byte(tt.body))
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("parse error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("parse (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"events":[{"eventAction":"expiration","eventDate":"2027-01-01T00:00:00+01:00"}]}`))
	f.Add([]byte(`{"objectClassName":"nameserver"}`))
	f.Add([]byte(`{"links":[{"rel":"related","type":"application/rdap+json","href":"/domain/example.net"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parse(body)
		if err != nil {
			// An error goes into logs and alerts: however hostile the
			// answer, only a little of it may come along.
			if len(err.Error()) > 300 {
				t.Errorf("parse error is %d bytes long: %.400s", len(err.Error()), err)
			}
			return
		}
		if !got.Expiry.IsZero() && got.Expiry.Location() != time.UTC {
			t.Errorf("parse expiry %v is not in UTC", got.Expiry)
		}
	})
}
