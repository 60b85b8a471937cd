package events

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestScheduleRefused: a window message that could make a prober do more
// than its share, or hold it, is refused whole when it is read.
func TestScheduleRefused(t *testing.T) {
	good := func() *ProbeSchedule {
		return &ProbeSchedule{Start: t0, WindowMS: 1000, Locations: []string{"ams1", "lon1"}, Checks: []ScheduledCheck{
			{Server: "mx1", Location: 1, Slot: 5901675, DueMS: 17}, {Server: "web1", Slot: 29534470, DueMS: 998},
		}}
	}
	many := func(n int) []ScheduledCheck {
		cs := make([]ScheduledCheck, n)
		for i := range cs {
			cs[i] = ScheduledCheck{Server: "s" + strconv.Itoa(i)}
		}
		return cs
	}
	tests := []struct {
		name   string
		change func(*ProbeSchedule)
		want   string
	}{
		{"no start", func(s *ProbeSchedule) { s.Start = time.Time{} }, "missing start"},
		{"no window", func(s *ProbeSchedule) { s.WindowMS = 0 }, "window_ms must be"},
		{"a window of an hour", func(s *ProbeSchedule) { s.WindowMS = 3_600_000 }, "window_ms must be"},
		{"no locations", func(s *ProbeSchedule) { s.Locations = nil }, "no locations"},
		{"a location with a dot", func(s *ProbeSchedule) { s.Locations[0] = "ams1.x" }, `location "ams1.x" must be`},
		{"a location twice", func(s *ProbeSchedule) { s.Locations[1] = "ams1" }, "listed twice"},
		{"no checks", func(s *ProbeSchedule) { s.Checks = nil }, "no checks"},
		{"too many checks", func(s *ProbeSchedule) { s.Checks = many(MaxScheduleChecks + 1) }, "5001 checks, at most 5000"},
		{"a server with a wildcard", func(s *ProbeSchedule) { s.Checks[0].Server = "mx*" }, `server "mx*" must be`},
		{"a location out of the list", func(s *ProbeSchedule) { s.Checks[0].Location = 2 }, "names location 2 of 2"},
		{"a negative location", func(s *ProbeSchedule) { s.Checks[0].Location = -1 }, "names location -1"},
		{"a negative slot", func(s *ProbeSchedule) { s.Checks[0].Slot = -1 }, "slot must not be negative"},
		{"due after the window", func(s *ProbeSchedule) { s.Checks[1].DueMS = 1001 }, "due 1001ms into a window of 1000ms"},
		{"due before the window", func(s *ProbeSchedule) { s.Checks[1].DueMS = -1 }, "due -1ms"},
		{"a server twice", func(s *ProbeSchedule) { s.Checks[1].Server = "mx1" }, `server "mx1" checked twice`},
		{"the canary twice for one location", func(s *ProbeSchedule) {
			s.Checks = append(s.Checks, ScheduledCheck{Server: CanaryServer, Location: 1}, ScheduledCheck{Server: CanaryServer, Location: 1})
		}, `server "tocsin-canary" checked twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := good()
			if err := s.Validate(); err != nil {
				t.Fatalf("the good window is refused: %v", err)
			}
			tt.change(s)
			// Written by hand, as a forger would: Marshal refuses it.
			data, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			env, _ := json.Marshal(envelope{Version: Version, ID: ScheduleID(1, 0), Type: TypeProbeSchedule, Time: t0, Source: "nobody", Data: data})
			_, err = Decode(SubjectProbeSchedule, env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	// The canary, once for each location, is one window's.
	canaries := good()
	canaries.Checks = append(canaries.Checks, ScheduledCheck{Server: CanaryServer}, ScheduledCheck{Server: CanaryServer, Location: 1})
	if err := canaries.Validate(); err != nil {
		t.Errorf("a window with each location's canary is refused: %v", err)
	}
	if _, err := Decode(SubjectProbeTask("lon1"), mustMarshal(t, New(ScheduleID(1, 0), "s", t0, good()))); err == nil {
		t.Error("a window was accepted on a task subject")
	}
}

func mustMarshal(t *testing.T, ev Event) []byte {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
