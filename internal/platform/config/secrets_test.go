package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEachProcessReadsOnlyItsSecrets: a process loads the config for the
// services it runs and reads only their secrets, so that the status page's
// container, say, needs and holds no SMS or SMTP credential, while tocsin
// validate (Load) still reads them all. A reference is checked for its form
// whoever reads it.
func TestEachProcessReadsOnlyItsSecrets(t *testing.T) {
	t.Parallel()
	none := func(string) (string, bool) { return "", false }
	const full = "testdata/good/full.yaml"

	// Nothing in the environment: each process is refused for exactly
	// the variables its own services read.
	for _, tc := range []struct {
		services      []string
		want, notWant []string
	}{
		{[]string{"verifier"}, nil, []string{"is not set"}},
		{[]string{"statuspage", "domains", "selfwatch", "failover"}, nil, []string{"is not set"}},
		{nil, nil, []string{"is not set"}}, // tocsin status, maintenance: no service
		{[]string{"notifier"}, []string{"TOCSIN_SMTP_PASSWORD", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"}, []string{"X_TOKEN", "FACEBOOK_PAGE_TOKEN"}},
		{[]string{"escalator"}, []string{"TOCSIN_SMTP_PASSWORD", "X_CONSUMER_KEY", "X_TOKEN", "FACEBOOK_PAGE_TOKEN"}, []string{"TWILIO"}},
		{[]string{"prober"}, []string{"TOCSIN_SMTP_PASSWORD (password)"}, []string{"TWILIO", "X_TOKEN"}},
	} {
		_, err := LoadFor(full, none, tc.services)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if len(tc.want) == 0 && err != nil {
			t.Errorf("%v with no secret in the environment: %v", tc.services, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v with no secret in the environment: want a problem naming %s, got %q", tc.services, w, got)
			}
		}
		for _, nw := range tc.notWant {
			if strings.Contains(got, nw) {
				t.Errorf("%v refused for a secret it does not read (%s): %q", tc.services, nw, got)
			}
		}
	}
	if _, err := Load(full, none); err == nil || !strings.Contains(err.Error(), "TWILIO_AUTH_TOKEN") {
		t.Errorf("tocsin validate with no secret in the environment: %v, want every secret refused", err)
	}

	// Everything in the environment: a process holds only its own.
	page, err := LoadFor(full, testEnv, []string{"statuspage"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Providers.Twilio.AuthToken.IsSet() || page.Providers.SMTP.Password.IsSet() || page.Providers.X.TokenSecret.IsSet() || page.Providers.Facebook.Token.IsSet() {
		t.Error("the status page's process holds a provider's credential")
	}
	notifier, err := LoadFor(full, testEnv, []string{"notifier"})
	if err != nil {
		t.Fatal(err)
	}
	if !notifier.Providers.Twilio.AuthToken.IsSet() || !notifier.Providers.SMTP.Password.IsSet() || notifier.Providers.X.TokenSecret.IsSet() {
		t.Error("the notifier's process holds the wrong credentials: want Twilio's and SMTP's, not X's")
	}
	for file, services := range map[string][]string{
		"testdata/good/push.yaml":     {"push"},
		"testdata/good/failover.yaml": {"failover"},
		"testdata/good/surfaces.yaml": {"statuspage"},
	} {
		// Its secret files moved away: the others load without them.
		dir := t.TempDir()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		moved := filepath.Join(dir, filepath.Base(file))
		if err := os.WriteFile(moved, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFor(moved, testEnv, []string{"verifier", "notifier"}); err != nil {
			t.Errorf("%s without its secret files, for the verifier and notifier: %v", file, err)
		}
		if _, err := LoadFor(moved, testEnv, services); err == nil {
			t.Errorf("%s without its secret files, for %v: loaded", file, services)
		}
	}

	// A reference of the wrong form is refused whoever runs.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`site: {name: S}
locations: [a]
boxes: [{id: b, name: B, servers: [{id: s, check: "tcp://h:1"}]}]
staff: [{name: A, email: a@example.net}]
providers:
  smtp: {host: h, from: a@example.net, username: u, password_env: "not a name"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFor(bad, none, []string{"verifier"}); err == nil || !strings.Contains(err.Error(), "is not an environment variable name") {
		t.Errorf("a malformed reference, for the verifier: %v", err)
	}
}
