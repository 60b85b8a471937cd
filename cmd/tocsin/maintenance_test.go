package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/maintenance"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
)

// TestMaintenanceCommand starts, lists and ends windows on a running
// JetStream server, as an operator would.
func TestMaintenanceCommand(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil) // the streams and buckets "tocsin run" makes
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	env := func(name string) (string, bool) {
		switch name {
		case "TOCSIN_SMTP_PASSWORD":
			return "pw", true
		case "USER":
			return "alice", true
		}
		return "", false
	}
	tocsin := func(args ...string) (int, string, string) {
		return runClocked(context.Background(), cmdMaintenance, env, now, args...)
	}
	example := "../../deploy/tocsin.example.yaml"

	code, out, errs := tocsin("start", "--nats", srv.URL, "--config", example, "--servers", "web1", "--for", "2h", "--reason", "Disk swap")
	if code != 0 {
		t.Fatalf("start: %d %s", code, errs)
	}
	if !strings.Contains(out, "web1 from 2026-11-21T10:00:00Z until 2026-11-21T12:00:00Z") || !strings.Contains(out, "internal: every box stays available") {
		t.Errorf("start said:\n%s", out)
	}
	id := regexp.MustCompile(`maintenance (\S+):`).FindStringSubmatch(out)[1]

	code, out, errs = tocsin("start", "--nats", srv.URL, "--config", example, "--box", "db", "--from", "2026-11-22T02:00:00Z", "--until", "2026-11-22T03:00:00Z")
	if code != 0 || !strings.Contains(out, "public: it takes down every server of db") {
		t.Errorf("start a box: %d\n%s%s", code, out, errs)
	}

	code, out, _ = tocsin("list", "--nats", srv.URL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[1], id+"  under way") || !strings.Contains(lines[1], "alice") || !strings.Contains(lines[2], "scheduled") || !strings.Contains(lines[2], "yes: db") {
		t.Errorf("list: %d\n%s", code, out)
	}

	now = now.Add(30 * time.Minute)
	if code, out, errs = tocsin("end", "--nats", srv.URL, id); code != 0 || !strings.Contains(out, "ended (web1)") {
		t.Errorf("end: %d %s %s", code, out, errs)
	}
	store, err := maintenance.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	list, err := store.List(context.Background())
	if err != nil || len(list) != 2 || !list[0].Until.Equal(now) || list[0].By != "alice" {
		t.Errorf("kept after end: %+v %v", list, err)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"start", "--nats", srv.URL, "--config", example, "--servers", "nope", "--for", "1h"}, 2, `no server "nope"`},
		{[]string{"start", "--nats", srv.URL, "--config", example, "--servers", "web1"}, 2, "say how long"},
		{[]string{"start", "--nats", srv.URL, "--config", example, "--box", "web", "--for", "1h", "--until", "2026-11-22T03:00:00Z"}, 2, "not both"},
		{[]string{"start", "--nats", srv.URL, "--config", example, "--web", "x"}, 2, "flag provided but not defined"},
		{[]string{"end", "--nats", srv.URL, id}, 1, "ended already"},
		{[]string{"end", "--nats", srv.URL, "20991231-zzzzzz"}, 1, "no maintenance window 20991231-zzzzzz"},
		{[]string{"list", "--nats", "nats://127.0.0.1:1"}, 1, "is tocsin running?"},
		{[]string{"pause"}, 2, `unknown subcommand "pause"`},
	} {
		code, _, errs := tocsin(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tt.args, code, errs, tt.code, tt.want)
		}
	}
}
