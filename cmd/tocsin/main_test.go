package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("site: {name: X}\nlocations: [lon1]\nboxes:\n  - {id: mx, name: MX, servers: [{id: mx1, check: \"tcp://mx1\"}]}\nstaff: [{name: A, email: a@example.net}]\nprovidres: {}\n"), 0o600)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"example config", []string{"validate", "--config", "../../deploy/tocsin.example.yaml"}, 0,
			"deploy/tocsin.example.yaml: ok: 3 boxes, 5 servers, 3 locations, 2 staff", nil},
		{"bad config", []string{"validate", "--config", bad}, 1, "", []string{
			bad + `:4: check "tcp://mx1" needs a port, like tcp://host:25`,
			bad + `:6: unknown key "providres" (expected one of: site, checks,`,
			bad + ":1: providers.smtp is missing: staff with an email address could not be told",
			"3 problem(s) in " + bad,
		}},
		{"missing file", []string{"validate", "--config", "/nonexistent/tocsin.yaml"}, 1, "", []string{"read config: open /nonexistent/tocsin.yaml: no such file or directory"}},
		{"run with a bad config", []string{"run", "--config", bad}, 1, "", []string{bad + ":4:"}},
		{"negative ack wait", []string{"run", "--config", "../../deploy/tocsin.example.yaml", "--ack-wait", "-1s"}, 2, "", []string{"--ack-wait -1s must not be negative"}},
		{"negative take-over", []string{"run", "--config", "../../deploy/tocsin.example.yaml", "--take-over", "-2s"}, 2, "", []string{"--take-over -2s must not be negative"}},
		{"take-over too short", []string{"run", "--config", "../../deploy/tocsin.example.yaml", "--take-over", "500ms"}, 2, "", []string{"--take-over 500ms is too short: at least 2s"}},
		{"unknown command", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`, "Usage:"}},
		{"unknown service", []string{"run", "--config", "../../deploy/tocsin.example.yaml", "--services", "prober,pager"}, 1, "", []string{`unknown service \"pager\" (available: prober, verifier, notifier, escalator, failover, statuspage, domains, push, watchdog, selfwatch)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errs strings.Builder
			code := run(context.Background(), tt.args, &out, &errs, func(name string) (string, bool) {
				return "pw", name == "TOCSIN_SMTP_PASSWORD"
			})
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out.String(), errs.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q, want it to contain %q", out.String(), tt.stdout)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(errs.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errs.String())
				}
			}
			if strings.Contains(errs.String(), "goroutine ") || strings.Contains(errs.String(), "panic") {
				t.Errorf("a Go stack trace reached the user:\n%s", errs.String())
			}
		})
	}
}

// TestEachProcessNeedsOnlyItsSecrets: with no secret in the environment, a
// process for the verifier, or tocsin status, gets past the config (to a
// NATS server that is not there), while one for the notifier is refused
// for the SMTP password it sends with.
func TestEachProcessNeedsOnlyItsSecrets(t *testing.T) {
	t.Parallel()
	const example = "../../deploy/tocsin.example.yaml"
	noNATS := []string{"--nats", "nats://127.0.0.1:1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--config", example, "--services", "verifier"}, "connect to nats"},
		{[]string{"status", "--config", example}, "connect to nats"},
		{[]string{"run", "--config", example, "--services", "notifier"}, "TOCSIN_SMTP_PASSWORD (password) is not set"},
	} {
		var out, errs strings.Builder
		code := run(context.Background(), append(tc.args, noNATS...), &out, &errs, func(string) (string, bool) { return "", false })
		if code != 1 || !strings.Contains(errs.String(), tc.want) {
			t.Errorf("tocsin %v with no secret set: exit %d, stderr %q; want 1 and %q", tc.args, code, errs.String(), tc.want)
		}
		if tc.want != "TOCSIN_SMTP_PASSWORD (password) is not set" && strings.Contains(errs.String(), "is not set") {
			t.Errorf("tocsin %v was refused for a secret it does not read: %s", tc.args, errs.String())
		}
	}
}
