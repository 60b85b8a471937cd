package events

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The schedule: each window of time, the scheduler publishes one message
// holding every server's scheduled check due in that window, each with the
// location chosen for it, rather than one task per check. One message per
// window for the whole fleet is the bus's whole cost of the regular checks:
// one publish, one de-duplication, one delivery to each location, one ack.
// Re-checks and the canary stay tasks of their own on SubjectProbeTask:
// they go at once, not with the next window.
const (
	TypeProbeSchedule Type = "probe.schedule"
	// SubjectProbeSchedule is where every window goes; every location's
	// prober reads every window and keeps its own checks.
	SubjectProbeSchedule = "probe.schedule"
	// StreamSchedule holds the windows for a few minutes: each location's
	// prober has its own durable consumer on it.
	StreamSchedule = "TOCSIN_SCHEDULE"
)

// Bounds of a window message. A server is due at most once a window (the
// shortest interval the config allows, 1s, is a window), so MaxScheduleChecks
// is the fleet's checks per second a message carries; more go in further
// parts. At the longest a check takes on the wire, the largest message stays
// well under the stream's limit.
const (
	MaxScheduleChecks    = 5000
	MaxScheduleLocations = 64
	MaxScheduleWindow    = time.Minute
)

// ScheduleID is the id of part n of window k's message: every scheduler
// replica gives its view of a window the same id, so JetStream keeps the
// first one stored whole, and no check is given to two locations, nor to
// none, however the replicas' views differ.
func ScheduleID(window int64, part int) string {
	return "schedule/" + strconv.FormatInt(window, 10) + "/" + strconv.Itoa(part)
}

// ProbeSchedule is the scheduled checks due in one window, each given to
// one location. It says which server and which slot: whatever else a check
// needs (the URL, the timeout, a login) each prober reads from its own
// config, so a forged window can only ask for a configured check.
type ProbeSchedule struct {
	Start    time.Time `json:"start"`     // when the window begins
	WindowMS int64     `json:"window_ms"` // how long it lasts
	// Locations are the ones given checks; each check names one by its
	// place in the list, so that a location is not spelt out per check.
	Locations []string         `json:"locations"`
	Checks    []ScheduledCheck `json:"checks"`
}

// ScheduledCheck is one server's check in a window.
type ScheduledCheck struct {
	Server   string `json:"server"`
	Location int    `json:"loc"`  // index in the window's Locations
	Slot     int64  `json:"slot"` // the server's interval number since the Unix epoch
	// DueMS is when it falls due, in milliseconds after the window's
	// start, rounded up: at most the window's length.
	DueMS int64 `json:"due_ms"`
}

func (*ProbeSchedule) EventType() Type { return TypeProbeSchedule }
func (*ProbeSchedule) Subject() string { return SubjectProbeSchedule }
func (s *ProbeSchedule) Validate() error {
	switch {
	case s.Start.IsZero():
		return errors.New("missing start")
	case s.WindowMS <= 0 || s.WindowMS > MaxScheduleWindow.Milliseconds():
		return fmt.Errorf("window_ms must be between 1 and %d, got %d", MaxScheduleWindow.Milliseconds(), s.WindowMS)
	case len(s.Locations) == 0:
		return errors.New("no locations")
	case len(s.Locations) > MaxScheduleLocations:
		return fmt.Errorf("%d locations, at most %d", len(s.Locations), MaxScheduleLocations)
	case len(s.Checks) == 0:
		return errors.New("no checks") // an empty window is not published
	case len(s.Checks) > MaxScheduleChecks:
		return fmt.Errorf("%d checks, at most %d", len(s.Checks), MaxScheduleChecks)
	}
	for i, l := range s.Locations {
		if err := checkToken("location", l); err != nil {
			return err
		}
		for _, before := range s.Locations[:i] {
			if before == l {
				return fmt.Errorf("location %q listed twice", l)
			}
		}
	}
	servers := make(map[string]struct{}, len(s.Checks))
	for _, c := range s.Checks {
		if err := checkToken("server", c.Server); err != nil {
			return err
		}
		switch {
		case c.Location < 0 || c.Location >= len(s.Locations):
			return fmt.Errorf("check of %q names location %d of %d", c.Server, c.Location, len(s.Locations))
		case c.Slot < 0:
			return fmt.Errorf("check of %q: slot must not be negative, got %d", c.Server, c.Slot)
		case c.DueMS < 0 || c.DueMS > s.WindowMS:
			return fmt.Errorf("check of %q due %dms into a window of %dms", c.Server, c.DueMS, s.WindowMS)
		}
		// A server is due at most once a window: a message naming one
		// many times would have every location check it many times over.
		// The canary is the exception: once for each location.
		key := c.Server
		if key == CanaryServer {
			key += "@" + s.Locations[c.Location]
		}
		if _, dup := servers[key]; dup {
			return fmt.Errorf("server %q checked twice in one window", c.Server)
		}
		servers[key] = struct{}{}
	}
	return nil
}

// Window is the window's length.
func (s *ProbeSchedule) Window() time.Duration { return time.Duration(s.WindowMS) * time.Millisecond }

// Due is when a check of the window falls due.
func (s *ProbeSchedule) Due(c ScheduledCheck) time.Time {
	return s.Start.Add(time.Duration(c.DueMS) * time.Millisecond)
}

// TaskID is the id a check of the window has as a task, "server/slot":
// the same as a task of its own would have, so that its result's id, and
// the verifier's view of it, do not depend on how it was carried.
func TaskID(server string, slot int64) string {
	return server + "/" + strconv.FormatInt(slot, 10)
}
