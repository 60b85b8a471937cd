package maintenance

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const fleet = `
site: {name: S}
locations: [lon1]
boxes:
  - {id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}, {id: mx2, check: "tcp://h:25"}, {id: mx3, check: "tcp://h:25", in_service: false}]}
  - {id: web, name: Web, servers: [{id: web1, check: "tcp://h:80"}, {id: web2, check: "tcp://h:80"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`

func parse(t *testing.T, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("m.yaml", []byte(fleet+extra), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func at(h, m int) time.Time { return time.Date(2026, 11, 21, h, m, 0, 0, time.UTC) }

// announced is every maintenance event on the stream, as "type id public".
func announced(t *testing.T, b *bus.Bus) []string {
	t.Helper()
	var got []string
	for _, ev := range bustest.Events(t, b, events.StreamEvents, events.SubjectMaintenances) {
		switch d := ev.Data.(type) {
		case *events.MaintenanceSet:
			got = append(got, "set "+d.Reason+" "+map[bool]string{true: "public", false: "internal"}[d.Public])
		case *events.MaintenanceEnded:
			got = append(got, "ended by "+d.By)
		}
	}
	return got
}

func TestConfigWindows(t *testing.T) {
	ctx := context.Background()
	b := bustest.New(t)
	s, err := Open(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
maintenance:
  - {servers: [mx1, mx2], from: 2026-11-21T02:00:00Z, until: 2026-11-21T04:00:00Z, reason: Kernel upgrade}
  - {servers: [web1], from: 2026-11-21T03:00:00Z, until: 2026-11-21T05:00:00Z}
`)
	if err := s.Sync(ctx, cfg, at(1, 0), quiet); err != nil {
		t.Fatal(err)
	}
	ws, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		server string
		t      time.Time
		want   string
	}{
		{"mx1", at(1, 59), ""},
		{"mx1", at(2, 0), "Kernel upgrade"},
		{"mx2", at(3, 59), "Kernel upgrade"},
		{"mx2", at(4, 0), ""},
		{"web1", at(3, 30), "planned maintenance"},
		{"web2", at(3, 30), ""},
	}
	for _, tt := range tests {
		if got := ws.At(tt.server, tt.t); got != tt.want {
			t.Errorf("At(%s, %s) = %q, want %q", tt.server, tt.t.Format("15:04"), got, tt.want)
		}
	}
	// The whole MX box is taken out (mx3 is not in service): customers are
	// told. web2 keeps serving while web1 is worked on: internal.
	if got, want := strings.Join(announced(t, b), "; "), "set Kernel upgrade public; set  internal"; got != want {
		t.Errorf("announced %q, want %q", got, want)
	}

	// Started again with the same config: nothing new to say.
	if err := s.Sync(ctx, cfg, at(1, 5), quiet); err != nil {
		t.Fatal(err)
	}
	if got := len(announced(t, b)); got != 2 {
		t.Errorf("%d announcements after a second sync, want 2", got)
	}

	// The web window is taken out of the config while under way: it ends.
	cfg = parse(t, `
maintenance:
  - {servers: [mx1, mx2], from: 2026-11-21T02:00:00Z, until: 2026-11-21T04:00:00Z, reason: Kernel and firmware upgrade}
`)
	if err := s.Sync(ctx, cfg, at(3, 30), quiet); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(announced(t, b), "; "), "set Kernel upgrade public; set  internal; ended by config; set Kernel and firmware upgrade public"; got != want {
		t.Errorf("announced %q, want %q", got, want)
	}
	wait.Within(t, 5*time.Second, "the config's windows replaced in the watch", func() bool {
		return ws.At("web1", at(3, 31)) == "" && ws.At("mx1", at(3, 31)) == "Kernel and firmware upgrade"
	})
}

func TestRunTimeWindows(t *testing.T) {
	ctx := context.Background()
	b := bustest.New(t)
	s, err := Open(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, "")
	ws, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	w, err := Window(cfg, NewID(now, []byte{1, 2, 3, 4}), []string{"web1"}, now, now.Add(time.Hour), "Disk swap", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if w.Public {
		t.Errorf("a window over web1 alone is public: %+v", w)
	}
	if err := s.Start(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, w); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("starting the same window twice: %v", err)
	}
	wait.Within(t, 5*time.Second, "the window started in the watch", func() bool { return ws.At("web1", now.Add(time.Minute)) == "Disk swap" })

	// A window not begun yet is withdrawn; one under way ends now.
	later, err := Window(cfg, NewID(now, []byte{5, 6, 7, 8}), []string{"mx1", "mx2"}, now.Add(2*time.Hour), now.Add(3*time.Hour), "", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !later.Public || len(later.Boxes) != 1 {
		t.Errorf("a window over the whole MX box is not public: %+v", later)
	}
	if err := s.Start(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.End(ctx, later.Maintenance, "bob", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.End(ctx, w.Maintenance, "alice", now.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.End(ctx, w.Maintenance, "alice", now.Add(11*time.Minute)); err == nil {
		t.Error("a window ended twice")
	}
	wait.Within(t, 5*time.Second, "both windows ended in the watch", func() bool {
		return ws.At("web1", now.Add(9*time.Minute)) == "Disk swap" && ws.At("web1", now.Add(10*time.Minute)) == "" && ws.At("mx1", now.Add(150*time.Minute)) == ""
	})
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Maintenance != w.Maintenance {
		t.Errorf("list after ending both: %+v, %v", list, err)
	}
	if _, err := Window(cfg, "x", []string{"nope"}, now, now.Add(time.Hour), "", ""); err == nil {
		t.Error("a window over a server not in the config")
	}
	if got, want := strings.Join(announced(t, b), "; "), "set Disk swap internal; set  public; ended by bob; ended by alice"; got != want {
		t.Errorf("announced %q, want %q", got, want)
	}
}
