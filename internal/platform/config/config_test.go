package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the expected problems of the bad configs")

// testEnv is the environment the corpus is loaded with.
func testEnv(name string) (string, bool) {
	v, ok := map[string]string{
		"TOCSIN_SMTP_PASSWORD": "pa55word-smtp",
		"TWILIO_ACCOUNT_SID":   "AC0123456789abcdef",
		"TWILIO_AUTH_TOKEN":    "tok3n-twilio",
		"X_CONSUMER_KEY":       "ck", "X_CONSUMER_SECRET": "cs", "X_TOKEN": "t",
		"FACEBOOK_PAGE_TOKEN": "fb-t0ken",
	}[name]
	return v, ok
}

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, testEnv); err != nil {
				t.Errorf("Load(%s):\n%v", f, err)
			}
		})
	}
}

// TestBadConfigs holds every bad file to the exact problems it must report,
// each as file:line: problem, all at once.
func TestBadConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(files) == 0 {
		t.Fatal("no bad configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f, testEnv)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load(%s) = %v, want problems", f, err)
			}
			got := err.Error() + "\n"
			want := strings.TrimSuffix(f, ".yaml") + ".err"
			if *update {
				os.WriteFile(want, []byte(got), 0o644)
			}
			b, err := os.ReadFile(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(b), got); diff != "" {
				t.Errorf("problems differ (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Server            string
		Interval, Timeout time.Duration
	}
	var got []row
	for _, tg := range cfg.Targets() {
		if tg.Box.ID != "protocols" {
			got = append(got, row{tg.Server.ID, tg.Interval, tg.Timeout})
		}
	}
	want := []row{
		{"mx1", 5 * time.Minute, 10 * time.Second}, // mx2 is not in service
		{"web1", time.Minute, 5 * time.Second},
		{"web2", 30 * time.Second, 10 * time.Second},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if cfg.Providers.SMTP.Password.Reveal() != "pa55word-smtp" {
		t.Error("smtp password not read from the environment")
	}
	if ftp, _ := cfg.Target("ftp1"); ftp.Server.Login.Password.Reveal() != "pa55word-smtp" {
		t.Error("ftp login password not read from the environment")
	}
	if cfg.Providers.X.TokenSecret.Reveal() != "s3cr3t-token-secret" {
		t.Error("x token secret not read from its file, relative to the config")
	}

	minimal, err := Load("testdata/good/minimal.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	two := 2
	if got, want := minimal.Checks, (Checks{Interval: Duration(5 * time.Minute), Timeout: Duration(10 * time.Second),
		Verify: Verify{Locations: 2, Quorum: 2}, RecoverAfter: 2,
		Flapping: Flapping{Changes: &two, Window: Duration(30 * time.Minute), Settle: Duration(10 * time.Minute)}}); !cmp.Equal(got, want) {
		t.Errorf("defaults (-want +got):\n%s", cmp.Diff(want, got))
	}
	// changes: 0 alone turns the detection off, and nothing else is needed.
	off, err := Parse("off.yaml", []byte(`
site: {name: S}
locations: [lon1]
checks: {flapping: {changes: 0}}
boxes: [{id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}]}]
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := off.Checks.Flapping.Limit(); got != 0 {
		t.Errorf("flapping: {changes: 0} gives a limit of %d, want 0 (off)", got)
	}
}

// TestSecretsNeverLeak: a secret is redacted however it is printed, and a
// problem about a secret file never quotes its content.
func TestSecretsNeverLeak(t *testing.T) {
	cfg, err := Load("testdata/good/full.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg.Providers.SMTP)
		if strings.Contains(out, "pa55word-smtp") {
			t.Errorf("%s of the smtp provider shows the password: %s", format, out)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "tocsin.yaml")
	os.WriteFile(path, []byte(`site: {name: S}
locations: [a]
boxes: [{id: b, name: B, servers: [{id: s, check: "tcp://h:1"}]}]
staff: [{name: A, email: a@example.net}]
providers:
  smtp: {host: h, from: a@example.net, username: u, password_env: TOCSIN_SMTP_PASSWORD, password_file: pw}
  facebook: {token_env: "pa55word-smtp"}
`), 0o600)
	_, err = Load(path, testEnv)
	if err == nil {
		t.Fatal("want problems")
	}
	if strings.Contains(strings.ReplaceAll(err.Error(), `"pa55word-smtp" is not`, ""), "pa55word-smtp") {
		t.Errorf("problems show a secret: %v", err)
	}
}

func TestBoxesTakenDown(t *testing.T) {
	cfg, err := Parse("m.yaml", []byte(`
site: {name: S}
locations: [lon1]
boxes:
  - {id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}, {id: mx2, check: "tcp://h:25"}, {id: mx3, check: "tcp://h:25", in_service: false}]}
  - {id: web, name: Web, servers: [{id: web1, check: "tcp://h:80"}, {id: web2, check: "tcp://h:80"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	// Taking mx1 and mx2 takes the whole MX box out (mx3 is not in
	// service): customers are told. web1 alone leaves web2 serving: internal.
	if got := cfg.BoxesTakenDown([]string{"mx1", "mx2"}); len(got) != 1 || got[0] != "mx" {
		t.Errorf("mx1 and mx2 take down %v, want [mx]", got)
	}
	if got := cfg.BoxesTakenDown([]string{"web1"}); len(got) != 0 {
		t.Errorf("web1 takes down %v, want none", got)
	}
}

func TestOnCallAt(t *testing.T) {
	cfg, err := Parse("o.yaml", []byte(`
site: {name: S}
locations: [lon1]
boxes: [{id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}]}]
staff: [{name: Ann, email: a@example.net}, {name: Bob, email: b@example.net}, {name: Cy, email: c@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
oncall:
  rotation: [Ann, Bob, Cy]
  handover: 2026-11-02T09:00:00Z
  overrides: [{name: Ann, from: 2026-11-20T18:00:00Z, until: 2026-11-21T09:00:00Z}]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   string
		want string
	}{
		{"2026-11-02T09:00:00Z", "Ann"},
		{"2026-11-09T08:59:59Z", "Ann"},
		{"2026-11-09T09:00:00Z", "Bob"},
		{"2026-11-16T09:00:00Z", "Cy"},
		{"2026-11-20T18:00:00Z", "Ann"}, // the override
		{"2026-11-21T09:00:00Z", "Cy"},
		{"2026-11-23T09:00:00Z", "Ann"}, // round again
		{"2026-11-02T08:59:59Z", "Cy"},  // the week before the handover
		{"2026-10-26T09:00:00Z", "Cy"},
		{"2026-10-26T08:59:59Z", "Bob"},
	}
	for _, tt := range tests {
		at, _ := time.Parse(time.RFC3339, tt.at)
		if got := cfg.OnCallAt(at); got != tt.want {
			t.Errorf("on call at %s: %s, want %s", tt.at, got, tt.want)
		}
	}
}

func TestEscalationFor(t *testing.T) {
	cfg, err := Parse("e.yaml", []byte(`
site: {name: S}
locations: [lon1]
datacentres:
  dc1: {name: One, escalation: {datacentre_after: 30m}}
  dc2: {name: Two}
boxes:
  - {id: mx, name: MX, datacentre: dc1, servers: [{id: mx1, check: "tcp://h:25"}]}
  - {id: web, name: Web, datacentre: dc2, servers: [{id: web1, check: "tcp://h:80"}]}
  - {id: db, name: DB, datacentre: dc1, escalation: {social_after: 20m}, servers: [{id: db1, check: "tcp://h:3306"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
escalation: {datacentre_after: 15m, social_after: 1h, ack_cancels: [datacentre]}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		boxes      []string
		dc, social time.Duration
	}{
		{[]string{"web"}, 15 * time.Minute, time.Hour},
		{[]string{"mx"}, 30 * time.Minute, time.Hour},        // its datacentre's
		{[]string{"db"}, 30 * time.Minute, 20 * time.Minute}, // its own, then its datacentre's
		{[]string{"mx", "web"}, 15 * time.Minute, time.Hour}, // the soonest
		{[]string{"mx", "db"}, 30 * time.Minute, 20 * time.Minute},
	}
	for _, tt := range tests {
		dc, social := cfg.EscalationFor(tt.boxes)
		if dc != tt.dc || social != tt.social {
			t.Errorf("%v: %s, %s; want %s, %s", tt.boxes, dc, social, tt.dc, tt.social)
		}
	}
}

// TestPushTokensStayOutOfProblems: a problem with a push server never
// says its token, nor another server's it clashes with.
func TestPushTokensStayOutOfProblems(t *testing.T) {
	_, err := Load("testdata/bad/push.yaml", testEnv)
	if err == nil {
		t.Fatal("the bad push config loaded")
	}
	for _, f := range []string{"push-token", "push-bad-token", "push-short-token"} {
		b, rerr := os.ReadFile(filepath.Join("testdata/bad", f))
		if rerr != nil {
			t.Fatal(rerr)
		}
		if tok := strings.TrimSpace(string(b)); strings.Contains(err.Error(), tok) {
			t.Errorf("the problems say the token of %s:\n%v", f, err)
		}
	}
	cfg, err := Load("testdata/good/push.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	tg, _ := cfg.Target("backup-nightly")
	if got, want := tg.Server.Check, PushCheck; got != want || !tg.Server.IsPush() || tg.Server.Push.Deadline() != 25*time.Hour {
		t.Errorf("backup-nightly: check %q, push %v, want check %q and a deadline of 25h", got, tg.Server.Push, want)
	}
}

// TestHangAfter: when a check still waiting for its answer asks other
// locations too.
func TestHangAfter(t *testing.T) {
	for _, c := range []struct{ configured, timeout, want time.Duration }{
		{0, 10 * time.Second, 3300 * time.Millisecond},
		{0, 2 * time.Second, time.Second},
		{0, 1200 * time.Millisecond, 0}, // a second leaves too little before the timeout
		{4 * time.Second, 10 * time.Second, 4 * time.Second},
		{4 * time.Second, 4 * time.Second, 0}, // a box's shorter timeout: never
		{200 * time.Millisecond, time.Second, 200 * time.Millisecond},
	} {
		if got := hangAfter(c.configured, c.timeout); got != c.want {
			t.Errorf("hangAfter(%v, %v) = %v, want %v", c.configured, c.timeout, got, c.want)
		}
	}
}
