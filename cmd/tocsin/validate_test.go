package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateWarnsOfAGap: a rotation that leaves nobody reachable by a
// rung for some of the week ahead is legal, and tocsin validate says so,
// with the file and line of the rung, without failing.
func TestValidateWarnsOfAGap(t *testing.T) {
	cfg := `site: {name: Example Hosting}
locations: [lon1]
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}
staff:
  - {name: Ann, email: ann@example.net}
  - {name: Bob, email: bob@example.net, phone: "+447700900002"}
oncall: {rotation: [Ann, Bob], handover: 2026-01-05T09:00:00Z}
notify:
  policies:
    outage:
      - {after: 0s, who: [oncall], by: [sms]}
providers:
  smtp: {host: smtp.example.net, from: alerts@example.net}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_ACCOUNT_SID, auth_token_env: TWILIO_AUTH_TOKEN}
`
	path := filepath.Join(t.TempDir(), "tocsin.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) {
		return map[string]string{"TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000001", "TWILIO_AUTH_TOKEN": "token"}[k], true
	}
	var out, errs strings.Builder
	if code := cmdValidate([]string{"--config", path}, &out, &errs, env); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errs.String())
	}
	if !strings.Contains(out.String(), ": ok:") {
		t.Errorf("stdout: %q", out.String())
	}
	if !strings.Contains(errs.String(), path+":12: warning:") {
		t.Errorf("no warning of Ann's weeks, when nobody gets the SMS, at the rung's line: %q", errs.String())
	}
}
