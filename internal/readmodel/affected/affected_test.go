package affected

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/internal/testkit/dnstest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const zone = `
web1.internal.          300 IN A     192.0.2.80
mx1.internal.           300 IN A     192.0.2.25
mx2.internal.           300 IN AAAA  2001:db8::26
example.com.            300 IN A     192.0.2.80
example.com.            300 IN MX    10 mail1.hosting.example.
example.com.            300 IN MX    20 mail2.hosting.example.
www.example.com.        300 IN CNAME example.com.
mail1.hosting.example.  300 IN CNAME mx1.internal.
mail2.hosting.example.  300 IN AAAA  2001:db8::26
elsewhere.example.      300 IN A     203.0.113.9
db.example.             300 IN A     10.0.0.5
`

const fleet = `
site: {name: Example Hosting}
locations: [lon1]
roles: {mx: {label: "Incoming mail (MX)"}, web: {label: Web hosting}}
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - {id: web, name: Web hosting, role: web, datacentre: dc1, servers: [{id: web1, check: "https://web1.internal/health"}]}
  - id: mx
    name: Incoming mail
    role: mx
    datacentre: dc1
    servers:
      - {id: mx1, check: "smtp://mx1.internal:25"}
      - {id: mx2, check: "smtp://mx2.internal:25"}
  - {id: db, name: Databases, servers: [{id: db1, check: "tcp://10.0.0.5:3306"}, {id: gone1, check: "tcp://gone.internal:3306"}]}
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 25, from: alerts@example.net, tls: none}}
`

var t0 = time.Date(2026, 11, 21, 2, 14, 0, 0, time.UTC)

// mxDown is what Tocsin knows when mx is down: the state fleetstate.Load
// reads from the verifier's records and the incident's events.
func mxDown() fleetstate.State {
	return fleetstate.State{
		Servers: map[string]events.ServerState{"web1": events.StateUp, "mx1": events.StateDown, "mx2": events.StateDown, "db1": events.StateUp},
		Boxes:   map[string]events.BoxState{"web": events.BoxOperational, "mx": events.BoxDown, "db": events.BoxOperational},
		Incidents: []fleetstate.Incident{{ID: "20261121-ab12cd", Title: "mx1 and mx2 (Incoming mail) are down", Since: t0,
			Status: "acknowledged", AckedBy: "Alice", Boxes: []string{"mx"}, Down: []string{"mx1", "mx2"}, Escalations: []string{"datacentre"}}},
		AsOf: t0.Add(time.Hour),
	}
}

func TestCheck(t *testing.T) {
	cfg, err := config.Parse("fleet.yaml", []byte(fleet), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t, zone)
	ctx := context.Background()
	st := mxDown()
	r := &Resolver{Addr: dns.Addr, Timeout: 2 * time.Second}

	for _, c := range []struct {
		name, verdict string
		want          []string
	}{
		{"www.example.com", VerdictYes, []string{
			"no: www.example.com is served by web1 (box Web hosting), which is operational",
			"yes: mail for www.example.com",
		}},
		{"example.com", VerdictYes, []string{
			"no: example.com is served by web1 (box Web hosting), which is operational",
			"yes: mail for example.com is handled by mx1 and mx2 (box Incoming mail), which is DOWN, incident 20261121-ab12cd since 02:14 UTC (acknowledged)",
		}},
		{"elsewhere.example", VerdictNotOurs, []string{
			"not ours: elsewhere.example resolves to 203.0.113.9, which no configured server has",
			"elsewhere.example has no MX records (no mail)",
		}},
		{"db.example", VerdictNo, []string{"no: db.example is served by db1 (box Databases), which is operational"}},
		{"192.0.2.80", VerdictNo, []string{"no: 192.0.2.80 is served by web1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := Check(ctx, r, cfg, c.name, st)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Join(a.Summary, "\n")
			if a.Verdict != c.verdict {
				t.Errorf("verdict %q, want %q:\n%s", a.Verdict, c.verdict, text)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("answer lacks %q:\n%s", w, text)
				}
			}
			if !strings.Contains(text, "the check host of 1 server did not resolve, so it could not be matched: gone1") {
				t.Errorf("answer does not say gone1 could not be matched:\n%s", text)
			}
		})
	}
	if _, err := Check(ctx, r, cfg, "nothing.example", st); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a name that does not exist: %v", err)
	}
	if _, err := Check(ctx, r, cfg, "http://x/", st); err == nil {
		t.Error("a URL is not a name, yet no error")
	}
}

// The system resolver is read from resolv.conf.
func TestResolverFrom(t *testing.T) {
	path := t.TempDir() + "/resolv.conf"
	if err := writeFile(path, "search example.net\nnameserver 192.0.2.53\n"); err != nil {
		t.Fatal(err)
	}
	r, err := resolverFrom(path)
	if err != nil || r.Addr != "192.0.2.53:53" {
		t.Errorf("resolver %+v, %v", r, err)
	}
	if err := writeFile(path, "search example.net\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := resolverFrom(path); err == nil {
		t.Error("a resolv.conf without a name server, yet no error")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
