package publictext

import (
	"strings"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting}
locations: [lon1]
roles: {web: {label: Web hosting}}
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "smtp://mx1.internal.example.net:25"}, {id: mx2, check: "tcp://192.0.2.10:25"}]}
  - id: web
    name: Webmail
    role: web
    servers:
      - {id: web-07, check: "https://web07.int.example.net/healthz"}
      - {id: webmail, check: "tcp://[2001:db8::7]:443"}
      - {id: www3, check: "https://www3.example.net/", public_name: www3}
    failover:
      haproxy: [{address: "lb1.int.example.net:9999", backend: web}]
      servers: {web-07: web07-be}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestScrub(t *testing.T) {
	s := New(testConfig(t))
	for _, tt := range []struct{ name, in, want string }{
		{"server id", "mx1 is back", "a server is back"},
		{"any case", "MX2 rebooting", "a server rebooting"},
		{"check host and port", "mx1.internal.example.net:25 refused", "a server refused"},
		{"short name of a check host", "web07 and web-07 too", "a server and a server too"},
		{"at the end of a sentence", "Restarted mx1.", "Restarted a server."},
		{"one after another", "mx1.mx2/web07", "a server.a server/a server"},
		{"inside a longer word", "mx10 and mx1-old and xmx1", "mx10 and mx1-old and xmx1"},
		{"address of a check", "192.0.2.10 back soon", "a server back soon"},
		{"any IPv4 address", "router 10.0.3.7:8080 and 172.016.000.001/12 down", "router a server and a server down"},
		{"not an address", "version 1.2.300.4, 10:30:00, 12.5%", "version 1.2.300.4, 10:30:00, 12.5%"},
		{"IPv6 check address", "2001:db8::7 and [2001:DB8:0:0:0:0:0:7]:443", "a server and a server"},
		{"any IPv6 address", "fe80::1%eth0, ::ffff:10.0.0.1 and 2001:db8::/32.", "a server, a server and a server."},
		{"IPv6 before a colon", "2001:db8::99: back", "a server: back"},
		{"a word before colons", "Note:: nothing", "Note:: nothing"},
		{"failover address and names", "lb1.int.example.net and web07-be", "a server and a server"},
		{"public words stay", "Webmail is fine; www3 too.", "Webmail is fine; www3 too."},
		{"unicode around", "«mx1»—ok", "«a server»—ok"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Scrub(tt.in); got != tt.want {
				t.Errorf("Scrub(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNames: what counts as internal, longest first.
func TestNames(t *testing.T) {
	got := New(testConfig(t)).Names()
	for _, want := range []string{"mx1.internal.example.net", "mx1", "mx2", "192.0.2.10", "web07.int.example.net", "web07", "web-07", "lb1.int.example.net", "lb1", "web07-be", "www3.example.net"} {
		if !strings.Contains(","+strings.Join(got, ",")+",", ","+want+",") {
			t.Errorf("names %v lack %q", got, want)
		}
	}
	for _, public := range []string{"webmail", "www3"} {
		for _, n := range got {
			if n == public {
				t.Errorf("names %v hold the public %q", got, public)
			}
		}
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) {
			t.Errorf("names not longest first: %v", got)
		}
	}
}

// FuzzScrub: whatever surrounds them, a name or an address standing alone
// never survives, and scrubbing twice changes nothing more.
func FuzzScrub(f *testing.F) {
	s := New(testConfig(f))
	for _, seed := range []string{"mx1 is back", "10.0.0.1:25", "[fe80::1%eth0]:80", "mx1.mx2.", "::", "a:b::c", "Note:: x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := s.Scrub(in)
		if again := s.Scrub(out); again != out {
			t.Errorf("Scrub(%q) = %q, and again %q", in, out, again)
		}
		for _, secret := range []string{"mx1.internal.example.net", "192.0.2.10", "2001:db8::7"} {
			if got := s.Scrub(in + " " + secret + " " + in); strings.Contains(got, " "+secret+" ") {
				t.Errorf("Scrub kept %q standing alone: %q", secret, got)
			}
		}
	})
}
