// Package judge is the verifier's decision logic, free of I/O: given what is
// known of a server and one new probe result, it says what the server's state
// is now and which events follow. Because it is a pure function of its
// inputs, a redelivered result yields the very same events with the very same
// ids, and JetStream's de-duplication makes publishing them again harmless.
package judge

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Server is what the verifier keeps of one server between results.
type Server struct {
	ID    string             `json:"id"`
	State events.ServerState `json:"state"`
	Since time.Time          `json:"since"` // when the current state began
	// Seq counts state changes; event and incident ids are derived from it.
	Seq   int64 `json:"seq"`
	Fails int   `json:"fails"` // failures in a row
	OKs   int   `json:"oks"`   // successes in a row
	// Last is when the newest result applied was taken; older ones are stale.
	Last time.Time `json:"last"`
	// The failure that began the current trouble.
	FailedSince time.Time `json:"failed_since,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	Locations   []string  `json:"locations,omitempty"`
	// The open incident, if any.
	Incident       string    `json:"incident,omitempty"`
	IncidentOpened time.Time `json:"incident_opened,omitzero"`
	IncidentTitle  string    `json:"incident_title,omitempty"`
}

// Policy is how strict the verifier is.
type Policy struct {
	// ConfirmAfter is the failures in a row that confirm a server down: the
	// first, and the re-checks that must fail too.
	ConfirmAfter int
	RecoverAfter int // successes in a row that bring a down server back up
}

// Server facts from the config that the events carry.
type Facts struct {
	Box     string
	BoxName string
	Check   string
}

// Effects are what follows from one result, in the order they must be
// published. Every id is derived from the server's state, never drawn at
// random.
type Effects struct {
	// Recheck, if set, asks for RecheckCount more checks at once, from other
	// locations where there are any; it is their correlation id.
	Recheck      string
	RecheckCount int
	Changes      []Change
	Opened       *events.IncidentOpened
	Resolved     *events.IncidentResolved
}

// Change is a state change with its event id.
type Change struct {
	ID string
	events.ServerStateChanged
}

// Stale reports whether a result is older than what s already reflects:
// redelivered or overtaken; it must change nothing.
func Stale(s Server, r *events.ProbeResult) bool {
	return !r.Started.After(s.Last)
}

// Apply judges one result. s is the zero Server for a server never seen.
func Apply(s Server, r *events.ProbeResult, f Facts, p Policy) (Server, Effects) {
	if s.ID == "" {
		s = Server{ID: r.Server, State: events.StateUnknown}
	}
	var fx Effects
	if Stale(s, r) {
		return s, fx
	}
	s.Last = r.Started
	at := r.Started

	if r.OK {
		s.Fails = 0
		s.OKs++
		switch s.State {
		case events.StateUnknown, events.StateSuspect:
			reason := ""
			if s.State == events.StateSuspect {
				reason = "false alarm: " + s.Reason + " was not seen again"
			}
			fx.Changes = append(fx.Changes, s.change(&at, events.StateUp, f, reason))
			s.clearTrouble()
		case events.StateDown:
			if s.OKs >= p.RecoverAfter {
				change := s.change(&at, events.StateUp, f, "")
				change.Incident = s.Incident
				fx.Changes = append(fx.Changes, change)
				fx.Resolved = &events.IncidentResolved{
					Incident: s.Incident, Opened: s.IncidentOpened, Resolved: at,
					Title: s.IncidentTitle, Servers: []string{s.ID},
				}
				s.clearTrouble()
				s.Incident, s.IncidentOpened, s.IncidentTitle = "", time.Time{}, ""
			}
		}
		return s, fx
	}

	s.OKs = 0
	s.Fails++
	switch s.State {
	case events.StateUnknown, events.StateUp:
		s.FailedSince, s.Reason, s.Locations = at, r.Reason, []string{r.Location}
		fx.Changes = append(fx.Changes, s.change(&at, events.StateSuspect, f, r.Reason))
		if s.Fails >= p.ConfirmAfter {
			s.confirm(&fx, at, r, f)
		} else {
			fx.Recheck, fx.RecheckCount = s.recheckID(), p.ConfirmAfter-s.Fails
		}
	case events.StateSuspect:
		s.Reason = r.Reason
		s.addLocation(r.Location)
		if s.Fails >= p.ConfirmAfter {
			s.confirm(&fx, at, r, f)
		}
	case events.StateDown:
		s.Reason = r.Reason
	}
	return s, fx
}

func (s *Server) confirm(fx *Effects, at time.Time, r *events.ProbeResult, f Facts) {
	change := s.change(&at, events.StateDown, f, r.Reason)
	s.Incident = IncidentID(s.ID, s.Seq, s.FailedSince)
	s.IncidentOpened = at
	s.IncidentTitle = fmt.Sprintf("%s (%s) is down", s.ID, f.BoxName)
	change.Incident = s.Incident
	fx.Changes = append(fx.Changes, change)
	fx.Opened = &events.IncidentOpened{
		Incident: s.Incident, Opened: at, Title: s.IncidentTitle,
		Servers: []events.AffectedServer{{
			Server: s.ID, Box: f.Box, Check: f.Check, Since: s.FailedSince,
			Reason: s.Reason, Locations: append([]string(nil), s.Locations...),
		}},
	}
}

// change moves s to a new state and describes the move.
func (s *Server) change(at *time.Time, to events.ServerState, f Facts, reason string) Change {
	c := events.ServerStateChanged{
		Server: s.ID, Box: f.Box, From: s.State, To: to, Since: *at, Reason: reason,
		Locations: append([]string(nil), s.Locations...),
	}
	s.State, s.Since = to, *at
	s.Seq++
	// The time makes the id unique even if the stored state were lost and
	// Seq began again.
	return Change{ID: fmt.Sprintf("%s/state/%d-%d", s.ID, s.Seq, at.UnixMilli()), ServerStateChanged: c}
}

func (s *Server) recheckID() string {
	return fmt.Sprintf("%s/recheck/%d-%d", s.ID, s.Seq, s.FailedSince.UnixMilli())
}

func (s *Server) clearTrouble() {
	s.FailedSince, s.Reason, s.Locations = time.Time{}, "", nil
}

func (s *Server) addLocation(l string) {
	for _, have := range s.Locations {
		if have == l {
			return
		}
	}
	s.Locations = append(s.Locations, l)
}

// IncidentID is short enough to read out on the phone and to type in an
// SMS reply, and stable: the same server, state change and first failure
// give the same id, and a new outage a new one.
func IncidentID(server string, seq int64, failedSince time.Time) string {
	at := failedSince
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", server, seq, failedSince.UnixNano()))
	code := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:6])
	return at.UTC().Format("20060102") + "-" + code
}
