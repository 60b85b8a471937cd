package policy

import (
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// TestWithTheConfig runs the default outage policy against a rotation of
// four in Cy's week, handed over to Ann at t0 + 30m, with Bob standing in
// for Cy from t0 + 3m and Dee as the secondary for an hour from t0 + 15m.
func TestWithTheConfig(t *testing.T) {
	cfg, err := config.Parse("tocsin.yaml", []byte(`
site: {name: S}
locations: [lon1]
boxes: [{id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}]}]
staff:
  - {name: ann, email: a@example.net, phone: "+447700900001"}
  - {name: bob, email: b@example.net, phone: "+447700900002"}
  - {name: cy, email: c@example.net, phone: "+447700900003"}
  - {name: dee, email: d@example.net}
providers:
  smtp: {host: h, from: a@example.net}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN}
oncall:
  rotation: [cy, ann, bob, dee]
  handover: 2026-11-14T03:30:00Z
  overrides: [{name: bob, from: 2026-11-21T03:03:00Z, until: 2026-11-21T04:00:00Z}]
  secondary:
    overrides: [{name: dee, from: 2026-11-21T03:15:00Z, until: 2026-11-21T04:15:00Z}]
`), func(string) (string, bool) { return "x", true })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, script string }{
		{"the defaults, with the override of the person on call, and theirs",
			// Cy's week: Ann is next, and secondary; Bob stands in for Cy.
			"t=0 fire:cy/sms next:5m; t=5m fire:bob/voice next:10m; t=10m fire:ann/sms+voice next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email done"},
		{"a secondary without a phone is a gap for a rung by phone",
			"t=0 fire:cy/sms next:5m; t=16m fire:bob/voice gap:secondary next:20m; " +
				"t=20m fire:ann/sms+email fire:bob/sms+email fire:cy/sms+email fire:dee/email names:secondary@10m done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(FromConfig(cfg), Staff(cfg), outage, tt.script); got != tt.script {
				t.Errorf("\ngot  %s\nwant %s", got, tt.script)
			}
		})
	}
}
