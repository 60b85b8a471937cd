package affected

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
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

// seed writes what the verifier keeps when mx is down: the servers' and
// boxes' records, the incident open in dc1, its events, an acknowledgement.
func seed(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	put := func(bucket, key string, v any) {
		t.Helper()
		bustest.Put(t, b, bucket, key, v)
	}
	type rec struct {
		State string    `json:"state"`
		Since time.Time `json:"since"`
	}
	put(events.BucketServers, "web1", rec{"up", t0})
	put(events.BucketServers, "mx1", rec{"down", t0})
	put(events.BucketServers, "mx2", rec{"down", t0})
	put(events.BucketServers, "db1", rec{"up", t0})
	put(events.BucketBoxes, "web", rec{"operational", t0})
	put(events.BucketBoxes, "mx", rec{"down", t0})
	put(events.BucketBoxes, "db", rec{"operational", t0})
	const id = "20261121-ab12cd"
	put(events.BucketIncidents, "open.dc1", map[string]any{"incidents": []map[string]any{{"id": id, "boxes": []string{"mx"}, "last_added": t0}}})
	for _, ev := range []events.Event{
		events.New(id+"/opened", "verifier", t0, &events.IncidentOpened{Incident: id, Opened: t0, Title: "mx1 and mx2 (Incoming mail) are down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: t0, BoxState: events.BoxDown}, {Server: "mx2", Box: "mx", Since: t0, BoxState: events.BoxDown}}}),
		events.New(id+"/acknowledged", "notifier", t0, &events.IncidentAcknowledged{Incident: id, By: "Alice", Via: events.AckViaSMS, At: t0.Add(3 * time.Minute)}),
		events.New(id+"/escalated/datacentre", "escalator", t0, &events.IncidentEscalated{Incident: id, Step: "datacentre", At: t0.Add(15 * time.Minute)}),
		// A resolved incident of yesterday, no longer listed as open.
		events.New("20261120-old111/opened", "verifier", t0, &events.IncidentOpened{Incident: "20261120-old111", Opened: t0.Add(-24 * time.Hour), Title: "web1 is down",
			Servers: []events.AffectedServer{{Server: "web1", Box: "web", Since: t0}}}),
	} {
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheck(t *testing.T) {
	cfg, err := config.Parse("fleet.yaml", []byte(fleet), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	dns := dnstest.Start(t, zone)
	b := bustest.New(t)
	seed(t, b)
	ctx := context.Background()
	st, err := Load(ctx, b, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Incidents) != 1 || st.Incidents[0].AckedBy != "Alice" || st.Incidents[0].Status != "acknowledged" ||
		len(st.Incidents[0].Escalations) != 1 || !st.Incidents[0].Since.Equal(t0) {
		t.Fatalf("open incidents %+v: want the one open, acknowledged by Alice, escalated to the datacentre", st.Incidents)
	}
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
