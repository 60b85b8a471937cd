package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

// TestDemo runs "tocsin demo" with short intervals until an outage has been
// emailed about and resolved.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errs := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--interval", "1s", "--outage-every", "1h", "--outage-for", "4s", "--listen", "127.0.0.1:0"}, out, errs, testEnv)
	}()
	exited := -1
	resolved := wait.Until(ctx, 60*time.Second, func() bool {
		select {
		case exited = <-done:
			return true
		default:
		}
		return strings.Contains(out.String(), "RESOLVED:")
	})
	if exited >= 0 {
		t.Fatalf("demo exited %d early:\n%s\n%s", exited, out, errs)
	}
	if !resolved {
		cancel()
		<-done
		t.Fatalf("no resolved email within a minute:\n%s\n%s", out, errs)
	}
	// The outbox page shows what went out.
	if m := regexp.MustCompile(`What would have gone out \(SMS, email, tickets, posts\): (http://\S+)`).FindStringSubmatch(out.String()); m == nil {
		t.Error("the demo does not say where its outbox is")
	} else if resp, err := http.Get(m[1]); err != nil {
		t.Errorf("outbox: %v", err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), "RESOLVED:") || !strings.Contains(string(page), `<article class="sms">`) {
			t.Errorf("outbox:\n%s", page)
		}
	}
	// The status page shows the fleet while the demo runs.
	if m := regexp.MustCompile(`The public status page: (http://\S+)`).FindStringSubmatch(out.String()); m == nil {
		t.Error("the demo does not say where its status page is")
	} else if resp, err := http.Get(m[1]); err != nil {
		t.Errorf("status page: %v", err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), "Demo Hosting status") || !strings.Contains(string(page), "Incoming mail") {
			t.Errorf("status page:\n%s", page)
		}
	}
	// The on-call engineer's commands reach the demo, as it says: the
	// code of the SMS acknowledges, and tocsin status sees the services.
	var natsArgs []string
	if m := regexp.MustCompile(`From another terminal, as the on-call engineer: tocsin status( --data \S+)?;`).FindStringSubmatch(out.String()); m == nil {
		t.Error("the demo does not say how to reach it from another terminal")
	} else {
		natsArgs = strings.Fields(m[1])
	}
	if m := regexp.MustCompile(`Reply ACK (\w+)`).FindStringSubmatch(out.String()); m == nil {
		t.Error("no SMS asks for an acknowledgement")
	} else {
		var cmdOut, cmdErr strings.Builder
		if code := run(ctx, append(append([]string{"ack"}, natsArgs...), "--by", "Alice", m[1]), &cmdOut, &cmdErr, testEnv); code != 0 {
			t.Errorf("tocsin ack %s exited %d: %s", m[1], code, cmdErr.String())
		}
		if !wait.Until(ctx, 30*time.Second, func() bool { return strings.Contains(out.String(), "acknowledged by Alice (via cli)") }) {
			t.Errorf("the demo does not show the acknowledgement:\n%s", out)
		}
	}
	var statusOut, statusErr strings.Builder
	run(ctx, append([]string{"status"}, natsArgs...), &statusOut, &statusErr, testEnv)
	if !regexp.MustCompile(`\n  verifier +ready`).MatchString(statusOut.String()) || !regexp.MustCompile(`\n  prober@lon1 +ready`).MatchString(statusOut.String()) {
		t.Errorf("tocsin status against the demo:\n%s%s", statusOut.String(), statusErr.String())
	}

	// The admin server counts the outage and says the demo is ready.
	if m := regexp.MustCompile(`Metrics and health: (http://\S+)/metrics, `).FindStringSubmatch(out.String()); m == nil {
		t.Error("the demo does not say where its metrics are")
	} else {
		if code, body := httpGet(t, m[1]+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz: %d %s", code, body)
		}
		if n := sample(scrapeMetrics(t, m[1]), "tocsin_incidents_total", "event", "opened"); n < 1 {
			t.Errorf("incidents opened: %v, want at least 1", n)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exited %d:\n%s", code, errs)
	}
	got := out.String()
	for _, want := range []string{"The public status page: http://127.0.0.1:", "SMS to +4477009000", "14 servers in 7 boxes", "stops answering", "→ suspect", "→ down", "email to alice@demo.invalid", "answers again", "down → up", "box "} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
	// The first email of an incident says how bad it is.
	if !strings.Contains(got, "] DEGRADED: ") && !strings.Contains(got, "] OUTAGE: ") {
		t.Errorf("demo output has no email saying DEGRADED or OUTAGE:\n%s", got)
	}
}
