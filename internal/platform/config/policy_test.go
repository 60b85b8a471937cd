package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// team4 is a team of four on a weekly rotation from Monday 2 November, at
// 09:00; the rest of the file is added by each test.
const team4 = `
site: {name: S}
locations: [lon1]
boxes: [{id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}]}]
staff:
  - {name: Ann, email: a@example.net, phone: "+447700900001"}
  - {name: Bob, email: b@example.net, phone: "+447700900002"}
  - {name: Cy, email: c@example.net, phone: "+447700900003"}
  - {name: Dee, email: d@example.net}
providers:
  smtp: {host: h, from: a@example.net}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_ACCOUNT_SID, auth_token_env: TWILIO_AUTH_TOKEN}
`

func parse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse("p.yaml", []byte(yaml), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestDefaultPolicy(t *testing.T) {
	r := func(after time.Duration, who string, by ...string) Rung {
		return Rung{After: Duration(after), Who: []string{who}, By: by}
	}
	tests := []struct {
		name string
		yaml string
		want []Rung
	}{
		{"with Twilio and a rotation", team4 + "oncall: {rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z}\n", []Rung{
			r(0, "oncall", "sms"), r(5*time.Minute, "oncall", "voice"),
			r(10*time.Minute, "secondary", "sms", "voice"), r(20*time.Minute, "team", "sms", "email")}},
		{"without a rotation nobody is secondary", team4, []Rung{
			r(0, "oncall", "sms"), r(5*time.Minute, "oncall", "voice"), r(20*time.Minute, "team", "sms", "email")}},
		{"nor with a rotation of one", team4 + "oncall: {rotation: [Ann, Ann], handover: 2026-11-02T09:00:00Z}\n", []Rung{
			r(0, "oncall", "sms"), r(5*time.Minute, "oncall", "voice"), r(20*time.Minute, "team", "sms", "email")}},
		{"without Twilio, by email", strings.Replace(team4, "  twilio:", "  #", 1) + "oncall: {rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z}\n", []Rung{
			r(0, "oncall", "email"), r(10*time.Minute, "secondary", "email"), r(20*time.Minute, "team", "email")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, tt.yaml)
			for _, got := range [][]Rung{cfg.Notify.Policies.Degraded, cfg.Notify.Policies.Outage} {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("policy (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDefaultDegradedFollowsRouting: a team that routes degraded incidents
// to email is not texted or called about one by the default policy; an
// outage still pages, and a degraded policy written out is followed as
// written, with a warning.
func TestDefaultDegradedFollowsRouting(t *testing.T) {
	r := func(after time.Duration, who string, by ...string) Rung {
		return Rung{After: Duration(after), Who: []string{who}, By: by}
	}
	const rotation = "oncall: {rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z}\n"
	cfg := parse(t, team4+rotation+"notify: {severity: {degraded: {oncall: [email], others: [email]}}}\n")
	want := []Rung{r(0, "oncall", "email"), r(10*time.Minute, "secondary", "email"), r(20*time.Minute, "team", "email")}
	if diff := cmp.Diff(want, cfg.Notify.Policies.Degraded); diff != "" {
		t.Errorf("degraded (-want +got):\n%s", diff)
	}
	want = []Rung{r(0, "oncall", "sms"), r(5*time.Minute, "oncall", "voice"),
		r(10*time.Minute, "secondary", "sms", "voice"), r(20*time.Minute, "team", "sms", "email")}
	if diff := cmp.Diff(want, cfg.Notify.Policies.Outage); diff != "" {
		t.Errorf("outage (-want +got):\n%s", diff)
	}
	if w := cfg.Warnings(at("2026-11-02T12:00:00Z")); w != nil {
		t.Errorf("warnings for the default: %q", w)
	}

	cfg = parse(t, team4+rotation+`notify:
  severity: {degraded: {oncall: [email]}}
  policies:
    degraded:
      - {after: 0s, who: [oncall], by: [email]}
      - {after: 5m, who: [oncall], by: [sms]}
`)
	if got := cfg.Notify.Policies.Degraded[1].By; !slices.Equal(got, []string{"sms"}) {
		t.Errorf("the degraded policy as written pages by %v at its second rung, want sms", got)
	}
	wantW := []string{"p.yaml:19: warning: this rung of the degraded policy pages by sms or voice, while notify.severity.degraded reaches the person on call by no SMS: the policy is followed as written"}
	if diff := cmp.Diff(wantW, cfg.Warnings(at("2026-11-02T12:00:00Z"))); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestPoliciesAsWritten(t *testing.T) {
	cfg := parse(t, team4+`
notify:
  policies:
    outage:
      - {after: 0s, who: [oncall, Dee], by: [sms, email]}
      - {after: 1h30m, who: [team], by: [voice]}
`)
	want := []Rung{
		{After: 0, Who: []string{"oncall", "Dee"}, By: []string{"sms", "email"}},
		{After: Duration(90 * time.Minute), Who: []string{"team"}, By: []string{"voice"}},
	}
	if diff := cmp.Diff(want, cfg.Notify.Policies.Outage); diff != "" {
		t.Errorf("outage (-want +got):\n%s", diff)
	}
	if got := len(cfg.Notify.Policies.Degraded); got != 3 {
		t.Errorf("degraded, left out, has %d rungs; want the default's 3", got)
	}
	if got := cfg.Notify.Policies.For("warning"); got != nil {
		t.Errorf("a warning has a policy: %v", got)
	}
}

// TestSecondaryAt: the secondary is the next of the rotation unless a
// rotation of its own says otherwise; overrides are respected, and nobody
// is both.
func TestSecondaryAt(t *testing.T) {
	tests := []struct {
		name   string
		oncall string
		at     []string // time → want, …
	}{
		{"the next of the rotation", `{rotation: [Ann, Bob, Cy], handover: 2026-11-02T09:00:00Z}`, []string{
			"2026-11-02T09:00:00Z", "Bob",
			"2026-11-09T08:59:59Z", "Bob",
			"2026-11-09T09:00:00Z", "Cy",
			"2026-11-16T09:00:00Z", "Ann",
			"2026-11-01T00:00:00Z", "Ann", // Cy's week, before the handover
		}},
		{"the person standing in is not also secondary", `{rotation: [Ann, Bob, Cy], handover: 2026-11-02T09:00:00Z,
  overrides: [{name: Bob, from: 2026-11-03T00:00:00Z, until: 2026-11-04T00:00:00Z}]}`, []string{
			"2026-11-03T00:00:00Z", "Cy", // Bob stands in for Ann: the next after Bob
			"2026-11-04T00:00:00Z", "Bob",
		}},
		{"a rotation of one has no secondary", `{rotation: [Ann], handover: 2026-11-02T09:00:00Z}`, []string{
			"2026-11-02T09:00:00Z", "",
		}},
		{"without a rotation nobody", `{}`, []string{"2026-11-02T09:00:00Z", ""}},
		{"a rotation of its own, on the primary's handover", `{rotation: [Ann, Bob, Cy], handover: 2026-11-02T09:00:00Z,
  secondary: {rotation: [Cy, Ann, Bob]}}`, []string{
			"2026-11-02T09:00:00Z", "Cy",
			"2026-11-09T09:00:00Z", "Ann", // last week's person on call
		}},
		{"or on its own", `{rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z,
  secondary: {rotation: [Cy, Dee], handover: 2026-11-05T09:00:00Z}}`, []string{
			"2026-11-05T08:59:59Z", "Dee",
			"2026-11-05T09:00:00Z", "Cy",
		}},
		{"a gap where its rotation names the person on call", `{rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z,
  secondary: {rotation: [Bob, Ann]},
  overrides: [{name: Bob, from: 2026-11-03T00:00:00Z, until: 2026-11-04T00:00:00Z}]}`, []string{
			"2026-11-02T09:00:00Z", "Bob",
			"2026-11-03T00:00:00Z", "",
		}},
		{"its overrides", `{rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z,
  secondary: {overrides: [{name: Dee, from: 2026-11-03T00:00:00Z, until: 2026-11-04T00:00:00Z}]}}`, []string{
			"2026-11-03T00:00:00Z", "Dee",
			"2026-11-04T00:00:00Z", "Bob",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := parse(t, team4+"oncall: "+tt.oncall+"\n")
			for i := 0; i < len(tt.at); i += 2 {
				if got := cfg.SecondaryAt(at(tt.at[i])); got != tt.at[i+1] {
					t.Errorf("secondary at %s: %q, want %q", tt.at[i], got, tt.at[i+1])
				}
			}
		})
	}
}

func TestReach(t *testing.T) {
	cfg := parse(t, team4+"oncall: {rotation: [Ann, Bob], handover: 2026-11-02T09:00:00Z}\n")
	norota := parse(t, team4)
	names := func(ss []Staff) string {
		var n []string
		for _, s := range ss {
			n = append(n, s.Name)
		}
		return strings.Join(n, " ")
	}
	t0 := at("2026-11-02T09:00:00Z")
	tests := []struct {
		cfg  *Config
		who  string
		want string
	}{
		{cfg, "oncall", "Ann"},
		{cfg, "secondary", "Bob"},
		{cfg, "team", "Ann Bob Cy Dee"},
		{cfg, "Dee", "Dee"},
		{cfg, "Zed", ""},
		{norota, "oncall", "Ann Bob Cy Dee"}, // everyone is on call
		{norota, "secondary", ""},
	}
	for _, tt := range tests {
		if got := names(tt.cfg.Reach(tt.who, t0)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.who, got, tt.want)
		}
	}
}

// TestWarnings: a rung reaching nobody at some time in the next week is a
// warning with the line to look at, not a problem: the file still loads.
func TestWarnings(t *testing.T) {
	now := at("2026-11-02T12:00:00Z")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"none for a rotation of four", team4 + "oncall: {rotation: [Ann, Bob, Cy], handover: 2026-11-02T09:00:00Z}\n", nil},
		{"none without a rotation: everyone is on call", team4, nil},
		{"a secondary rotation naming the person on call", team4 + `oncall:
  rotation: [Ann, Bob]
  handover: 2026-11-02T09:00:00Z
  secondary:
    rotation: [Bob, Ann]
    overrides: []
  overrides:
    - {name: Bob, from: 2026-11-03T00:00:00Z, until: 2026-11-04T00:00:00Z}
`, []string{
			"p.yaml:14: warning: from 2026-11-03T00:00:00Z to 2026-11-04T00:00:00Z nobody is reached by the rung after 10m0s of the degraded and outage policies (secondary by sms, voice): it would be skipped",
		}},
		{"someone on call without a phone", team4 + `oncall: {rotation: [Ann, Dee], handover: 2026-10-26T09:00:00Z}
notify:
  policies:
    outage:
      - {after: 0s, who: [oncall], by: [sms]}
      - {after: 5m, who: [oncall], by: [sms, email]}
`, []string{
			// The default degraded policy: Dee has no phone, and is
			// Ann's secondary from the handover.
			"p.yaml:13: warning: from 2026-11-02T12:00:00Z to 2026-11-09T09:00:00Z nobody is reached by the rung after 0s of the degraded policy (oncall by sms): it would be skipped",
			"p.yaml:13: warning: from 2026-11-02T12:00:00Z to 2026-11-09T09:00:00Z nobody is reached by the rung after 5m0s of the degraded policy (oncall by voice): it would be skipped",
			"p.yaml:13: warning: from 2026-11-09T09:00:00Z to 2026-11-09T12:00:00Z nobody is reached by the rung after 10m0s of the degraded policy (secondary by sms, voice): it would be skipped",
			// The outage policy as written: its second rung reaches
			// Dee by email.
			"p.yaml:17: warning: from 2026-11-02T12:00:00Z to 2026-11-09T09:00:00Z nobody is reached by the rung after 0s of the outage policy (oncall by sms): it would be skipped",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parse(t, tt.yaml).Warnings(now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
