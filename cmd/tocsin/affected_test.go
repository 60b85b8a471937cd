package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/affected"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/dnstest"
)

// affectedZone is what the world's DNS says of the fleet in statusFleet
// and of a few customers' names.
const affectedZone = `
web1.internal.          300 IN A     192.0.2.80
mx1.internal.           300 IN A     192.0.2.25
mx2.internal.           300 IN AAAA  2001:db8::26
example.com.            300 IN A     192.0.2.80
example.com.            300 IN MX    10 mail1.hosting.example.
example.com.            300 IN MX    20 mail2.hosting.example.
mail1.hosting.example.  300 IN CNAME mx1.internal.
mail2.hosting.example.  300 IN AAAA  2001:db8::26
elsewhere.example.      300 IN A     203.0.113.9
`

func runAffected(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runClocked(context.Background(), cmdAffected, noEnv, tStatus.Add(time.Hour), args...)
}

// TestAffected: support staff ask about a customer whose mail is on the
// box that is down, and about a name Tocsin does not serve.
func TestAffected(t *testing.T) {
	srv := bustest.Start(t)
	seedOutage(t, srv.Connect(t, nil))
	dns := dnstest.Start(t, affectedZone)
	cfg := writeConfig(t, statusFleet)

	code, out, errs := runAffected(t, "example.com", "--config", cfg, "--nats", srv.URL, "--resolver", dns.Addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for i, line := range strings.Split(out, "\n") {
		if n := len([]rune(line)); n > 80 && !strings.HasPrefix(line, "yes:") && !strings.HasPrefix(line, "no:") {
			t.Errorf("line %d of the table is %d wide, more than 80: %q", i+1, n, line)
		}
	}
	for _, want := range []string{
		"yes: mail for example.com is handled by mx1 and mx2 (box Incoming mail), which is DOWN, incident 20261121-ab12cd since 02:14 UTC",
		"example.com is served by web1 (box Web hosting)",
		"20261121-zz99yy", // the incident open on web1 too
		"FOR", "mx2", "Incoming mail",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the answer lacks %q:\n%s", want, out)
		}
	}

	// Flags first and the name last works too; --json answers for scripts.
	code, out, errs = runAffected(t, "--config", cfg, "--nats", srv.URL, "--resolver", dns.Addr, "--json", "elsewhere.example")
	var a affected.Answer
	if err := json.Unmarshal([]byte(out), &a); code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s%s", code, err, out, errs)
	}
	if a.Verdict != affected.VerdictNotOurs || len(a.Matches) != 0 ||
		!strings.Contains(strings.Join(a.Summary, "\n"), "not ours: elsewhere.example resolves to 203.0.113.9, which no configured server has") {
		t.Errorf("answer %+v", a)
	}

	code, _, errs = runAffected(t, "nothing.example", "--config", cfg, "--nats", srv.URL, "--resolver", dns.Addr)
	if code != 1 || !strings.Contains(errs, "does not exist") {
		t.Errorf("a name that does not exist: exit %d, stderr %q", code, errs)
	}
	if code, _, errs = runAffected(t, "--config", cfg); code != 2 || !strings.Contains(errs, "usage:") {
		t.Errorf("no name: exit %d, stderr %q", code, errs)
	}
	if code, _, errs = runAffected(t, "example.com", "--config", writeConfig(t, "site: [\n")); code == 0 || !strings.Contains(errs, "tocsin.yaml:") {
		t.Errorf("a broken config: exit %d, stderr %q", code, errs)
	}
}
