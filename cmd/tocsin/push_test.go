package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const pushToken = "e2e-push-token-0123456789abcdef"

// TestPushServerEndToEnd: the nightly backup reports in, then stops; once
// its every and grace have passed it is down like any server: an
// incident, an SMS and an email to the person on call, the page's
// component not operational. It reports again and the incident resolves.
// Then it reports a failure: down at once, well before any deadline, its
// message in the email.
func TestPushServerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	t.Parallel()
	pr := startProviders(t)
	nats := bustest.Start(t)
	page, pushAddr := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	cfgFile := writeConfigIn(t, dir, fmt.Sprintf(`
site: {name: Example Hosting, status_url: https://status.example.net}
locations: [lon1]
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - id: backups
    name: Mail Backups
    datacentre: dc1
    servers:
      - {id: backup-nightly, public_name: Nightly backup, push: {every: 5s, grace: 2s, token_env: BACKUP_PUSH_TOKEN}}
staff:
  - {name: Alice, email: alice@example.net, phone: %q}
escalation: {datacentre_after: 0s, social_after: 0s}
statuspage: {listen: %q}
push: {listen: %q}
%s`, alicePhone, page, pushAddr, pr.yaml()))
	env := func(name string) (string, bool) {
		if name == "BACKUP_PUSH_TOKEN" {
			return pushToken, true
		}
		return providerEnv(name)
	}
	p := startProcessWith(t, env, "run", "--config", cfgFile, "--nats", nats.URL,
		"--services", "verifier,notifier,statuspage,push", "--shutdown-timeout", "10s", "--data", t.TempDir())
	defer func() {
		if t.Failed() {
			t.Logf("tocsin log:\n%s", p.log.String())
		}
	}()
	// report returns when the attempt the push service took was sent:
	// its deadline runs from then, not from when the test saw the answer.
	report := func(path, body string) (sent time.Time) {
		t.Helper()
		wait.Within(t, 30*time.Second, "the push service to take "+path, func() bool {
			sent = time.Now()
			resp, err := http.Post("http://"+pushAddr+"/push/"+pushToken+path, "text/plain", strings.NewReader(body))
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		return sent
	}
	watch := nats.Connect(t, nil)
	servers, err := watch.KV(context.Background(), events.BucketServers)
	if err != nil {
		t.Fatal(err)
	}
	component := func() string {
		_, body := httpGet(t, "http://"+page+"/api/v2/components.json")
		return body
	}
	mailWith := func(word string) bool {
		for _, m := range pr.mail.Messages() {
			if strings.Contains(m.Subject, word) && strings.Contains(m.Subject, "backup-nightly") {
				return true
			}
		}
		return false
	}

	reported := report("", "")
	wait.Within(t, 30*time.Second, "the backup up", func() bool { return stateOf(t, servers, "backup-nightly") == events.StateUp })

	// It stops reporting: down once every and grace have passed.
	wait.Within(t, 30*time.Second, "the backup down for its missed deadline", func() bool {
		return stateOf(t, servers, "backup-nightly") == events.StateDown
	})
	if since := time.Since(reported); since < 7*time.Second {
		t.Errorf("down %s after its report, before every and grace (7s) had passed", since)
	}
	wait.Within(t, 30*time.Second, "the SMS and the email", func() bool { return len(smsTo(pr.sms, alicePhone)) >= 1 && mailWith("OUTAGE") })
	if sms := smsTo(pr.sms, alicePhone)[0]; !strings.Contains(sms.Body, "backup-nightly") {
		t.Errorf("the SMS says %q", sms.Body)
	}
	wait.Within(t, 30*time.Second, "the page red", func() bool {
		c := component()
		return strings.Contains(c, `"name":"Nightly backup"`) && !strings.Contains(c, `"name":"Nightly backup","status":"operational"`)
	})

	// It reports again: resolved.
	report("", "")
	wait.Within(t, 30*time.Second, "the resolution email", func() bool { return mailWith("RESOLVED") })
	if got := stateOf(t, servers, "backup-nightly"); got != events.StateUp {
		t.Errorf("after its report the backup is %s", got)
	}
	wait.Within(t, 30*time.Second, "the page green", func() bool {
		return strings.Contains(component(), `"name":"Nightly backup","status":"operational"`)
	})

	// It reports a failure: down at once, with its message.
	failed := report("/fail", "rsync: mailbox store unreachable")
	wait.Within(t, 30*time.Second, "the backup down for its failure", func() bool {
		return stateOf(t, servers, "backup-nightly") == events.StateDown
	})
	if since := time.Since(failed); since > 5*time.Second {
		t.Errorf("down %s after the failure report: not at once", since)
	}
	wait.Within(t, 30*time.Second, "the failure's email", func() bool {
		for _, m := range pr.mail.Messages() {
			if strings.Contains(m.Text, "rsync: mailbox store unreachable") {
				return true
			}
		}
		return false
	})
	for _, m := range pr.mail.Messages() {
		if strings.Contains(m.Text, pushToken) {
			t.Errorf("an email holds the token: %s", m.Subject)
		}
	}
}
