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
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Server is what the verifier keeps of one server between results: the
// record other services read (its state, since when, up since when), and
// the judge's own working state beside it in the same stored value.
type Server struct {
	events.ServerRecord
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
	// The verification under way while the server is suspect.
	Round *Round `json:"round,omitempty"`
	// FalseAlarms counts the failures that other locations did not confirm.
	FalseAlarms int64 `json:"false_alarms,omitempty"`
	// Flips are the times of the recent changes between up and down, and
	// Flapping says there were too many: the open incident then stays open
	// through them, and nobody is paged again, until the server settles.
	Flips    []time.Time `json:"flips,omitempty"`
	Flapping bool        `json:"flapping,omitempty"`
	// The open incident, if any.
	Incident       string    `json:"incident,omitempty"`
	IncidentOpened time.Time `json:"incident_opened,omitzero"`
	IncidentTitle  string    `json:"incident_title,omitempty"`
	// The open warning, if any: a check passed saying something will fail
	// (a certificate about to expire). It has an incident of its own,
	// apart from any failure, and ends with a check that passes without it.
	Warning       string    `json:"warning,omitempty"`
	WarningID     string    `json:"warning_id,omitempty"`
	WarningOpened time.Time `json:"warning_opened,omitzero"`
	WarningTitle  string    `json:"warning_title,omitempty"`
}

// Round is one verification: re-checks asked of other locations, and what
// they answered.
type Round struct {
	ID      string    `json:"id"` // the correlation id the answers carry
	Started time.Time `json:"started"`
	Asked   int       `json:"asked"`
	// Where the re-checks went, and whether too few live locations made
	// some go back to where the failure was seen.
	Locations []string `json:"locations,omitempty"`
	Fallback  bool     `json:"fallback,omitempty"`
	Failed    int      `json:"failed"`
	OK        int      `json:"ok"`
	Answered  []string `json:"answered,omitempty"` // task ids, so an answer counts once
	// Hung: the verification began while a check was still unanswered,
	// the Origin task at OriginAt. The server is confirmed down only once
	// that check has failed too (OriginFailed): a slow server that does
	// answer is no outage.
	Hung         bool   `json:"hung,omitempty"`
	Origin       string `json:"origin,omitempty"`
	OriginAt     string `json:"origin_at,omitempty"`
	OriginFailed bool   `json:"origin_failed,omitempty"`
}

// Policy is how strict the verifier is.
type Policy struct {
	Ask    int // re-checks asked of other locations when a failure is seen
	Quorum int // failures among their answers that confirm the server down
	// RoundTimeout is how long a verification may wait for its answers
	// (a location may die with the task); after it, the next result starts
	// a new one.
	RoundTimeout time.Duration
	RecoverAfter int // successes in a row that bring a down server back up
	// Flapping: more than FlapChanges changes between up and down within
	// FlapWindow; it has settled once up for FlapSettle. 0 changes: never.
	FlapChanges            int
	FlapWindow, FlapSettle time.Duration
}

// Server facts from the config that the events carry.
type Facts struct {
	Box     string
	BoxName string
	Check   string
	// Maintenance is the reason of the maintenance window the result falls
	// in, if any.
	Maintenance string
	// Nonce, drawn at random by the caller, makes a new verification's id
	// one nobody can guess: answers are matched by it. The round is
	// recorded before its tasks go out, so a redelivered result finds it.
	Nonce string
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
	FalseAlarm   *events.FalseAlarm
	FalseAlarmID string
	Opened       *events.IncidentOpened
	Resolved     *events.IncidentResolved
	// Flapping says the server has just been marked flapping: its
	// incident (the one open now, or Opened) is to tell staff once that
	// nobody will be paged about it again until it settles.
	Flapping bool
	// Warned opens a warning; Unwarned resolves it.
	Warned   *events.IncidentOpened
	Unwarned *events.IncidentResolved
}

// Change is a state change with its event id.
type Change struct {
	ID string
	events.ServerStateChanged
}

// Stale reports whether a result is older than what s already reflects:
// redelivered or overtaken; it must change nothing. An answer to the
// verification under way is never stale until counted: it was asked for.
func Stale(s Server, r *events.ProbeResult) bool {
	if s.isAnswer(r) {
		return slices.Contains(s.Round.Answered, r.Task)
	}
	if s.isOrigin(r) {
		return false // once counted, the round is over
	}
	return !r.Started.After(s.Last)
}

// TaskID is the id of the i-th re-check task of a verification, sent to
// location: the task an answer must name.
func TaskID(round, location string, i int) string { return fmt.Sprintf("%s/%s/%d", round, location, i) }

// Apply judges one result. s is the zero Server for a server never seen.
func Apply(s Server, r *events.ProbeResult, f Facts, p Policy) (out Server, fx Effects) {
	if s.ID == "" {
		s = Server{ServerRecord: events.ServerRecord{ID: r.Server, State: events.StateUnknown}}
	}
	s = s.clone() // the caller's copy stays as it was
	if Stale(s, r) {
		return s, fx
	}
	if r.Unanswered {
		// Not a result yet: the check's own follows, and is judged then.
		s.unanswered(&fx, r, f, p)
		return s, fx
	}
	wasFlapping := s.Flapping
	defer func() {
		fx.Flapping = out.Flapping && !wasFlapping && (out.Incident != "" || fx.Opened != nil)
		out.warn(&fx, r, f)
	}()
	if r.Started.After(s.Last) {
		s.Last = r.Started
	}
	at := r.Started

	if f.Maintenance != "" || s.State == events.StateMaintenance {
		if done := s.maintain(&fx, at, r, f); done {
			return s, fx
		}
	}

	if s.State == events.StateSuspect {
		switch {
		case s.isAnswer(r):
			s.answer(&fx, r, f, p)
			return s, fx
		case s.isOrigin(r):
			s.originAnswered(&fx, r, f, p)
			return s, fx
		case at.Sub(s.Round.Started) < p.RoundTimeout:
			// The verification decides; other results wait for it.
			return s, fx
		}
		// The answers never came: judge afresh.
		if r.OK {
			s.falseAlarm(&fx, at, f, "the re-checks were not answered and "+r.Location+" sees it up")
			return s, fx
		}
		// Where this failure was seen is asked no re-check, so it is
		// counted among those that saw the server failing now.
		s.Reason = r.Reason
		s.addLocation(r.Location)
		s.Round = nil
		s.ask(&fx, at, r, p, f.Nonce)
		return s, fx
	}

	if r.OK {
		s.Fails = 0
		if s.State == events.StateDown {
			s.OKs++ // counted only where they lead somewhere: recovery
		}
		switch s.State {
		case events.StateUnknown:
			fx.Changes = append(fx.Changes, s.change(&at, events.StateUp, f, ""))
		case events.StateUp:
			if s.Flapping && at.Sub(s.Since) >= p.FlapSettle {
				// Up long enough: it has settled, and the outage is over.
				s.Flapping, s.Flips = false, nil
				s.resolve(&fx, at)
			}
		case events.StateDown:
			if s.OKs >= p.RecoverAfter {
				s.flip(at, p)
				change := s.change(&at, events.StateUp, f, "")
				change.Incident, change.Flapping = s.Incident, s.Flapping
				fx.Changes = append(fx.Changes, change)
				s.clearTrouble()
				if !s.Flapping {
					s.resolve(&fx, at)
				}
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
		if p.Quorum <= 0 {
			s.confirm(&fx, at, r, f, p)
			return s, fx
		}
		s.ask(&fx, at, r, p, f.Nonce)
	case events.StateDown:
		s.Reason = r.Reason
	}
	return s, fx
}

// warn opens a warning when a check passes with one, and resolves it when
// a check passes without. A failed check says nothing of the warning.
func (s *Server) warn(fx *Effects, r *events.ProbeResult, f Facts) {
	switch {
	case !r.OK:
	case r.Warning != "" && s.WarningID == "":
		at := r.Started
		s.Warning, s.WarningOpened = r.Warning, at
		s.WarningID = IncidentID(s.ID+"/warning", s.Seq, at)
		s.WarningTitle = fmt.Sprintf("%s (%s): %s", s.ID, f.BoxName, r.Warning)
		fx.Warned = &events.IncidentOpened{
			Incident: s.WarningID, Opened: at, Title: s.WarningTitle, Severity: events.SeverityWarning,
			Servers: []events.AffectedServer{{Server: s.ID, Box: f.Box, Check: f.Check, Since: at, Reason: r.Warning, Locations: []string{r.Location}}},
		}
	case r.Warning == "" && s.WarningID != "":
		fx.Unwarned = &events.IncidentResolved{
			Incident: s.WarningID, Opened: s.WarningOpened, Resolved: r.Started, Title: s.WarningTitle,
			Servers: []string{s.ID}, Severity: events.SeverityWarning,
		}
		s.Warning, s.WarningID, s.WarningOpened, s.WarningTitle = "", "", time.Time{}, ""
	}
}

// maintain handles a result while a maintenance window is open, or the
// first after one closed; done says the result needs no further judgement.
// A server that goes into maintenance stops being verified; one that is
// down keeps its incident, which resolves when it is back.
func (s *Server) maintain(fx *Effects, at time.Time, r *events.ProbeResult, f Facts) (done bool) {
	if f.Maintenance != "" {
		if s.State == events.StateDown {
			return false
		}
		if s.State != events.StateMaintenance {
			s.clearTrouble()
			s.Fails, s.OKs = 0, 0
			fx.Changes = append(fx.Changes, s.change(&at, events.StateMaintenance, f, "maintenance: "+f.Maintenance))
		}
		return true
	}
	// The window has closed: judge this result as the first ever seen.
	fx.Changes = append(fx.Changes, s.change(&at, events.StateUnknown, f, "maintenance over"))
	return false
}

// resolve ends the open incident.
func (s *Server) resolve(fx *Effects, at time.Time) {
	fx.Resolved = &events.IncidentResolved{
		Incident: s.Incident, Opened: s.IncidentOpened, Resolved: at,
		Title: s.IncidentTitle, Servers: []string{s.ID},
	}
	s.Incident, s.IncidentOpened, s.IncidentTitle = "", time.Time{}, ""
}

// flip records a change between up and down, forgetting those older than
// the window, and marks the server flapping when there were too many.
func (s *Server) flip(at time.Time, p Policy) {
	if p.FlapChanges <= 0 {
		return
	}
	s.Flips = slices.DeleteFunc(s.Flips, func(t time.Time) bool { return at.Sub(t) > p.FlapWindow })
	s.Flips = append(s.Flips, at)
	if len(s.Flips) > p.FlapChanges {
		s.Flapping = true
	}
}

// Same reports whether s and o differ in nothing but when their newest
// result was taken: a result that changes nothing else need not be written.
func (s Server) Same(o Server) bool {
	s.Last, o.Last = time.Time{}, time.Time{}
	return reflect.DeepEqual(s, o)
}

// clone copies what Apply changes in place.
func (s Server) clone() Server {
	s.Locations, s.Flips = slices.Clone(s.Locations), slices.Clone(s.Flips)
	if s.Round != nil {
		rd := *s.Round
		rd.Locations, rd.Answered = slices.Clone(rd.Locations), slices.Clone(rd.Answered)
		s.Round = &rd
	}
	return s
}

// ask starts a verification: p.Ask re-checks, answered with its id.
func (s *Server) ask(fx *Effects, at time.Time, r *events.ProbeResult, p Policy, nonce string) {
	id := fmt.Sprintf("%s/verify/%d-%d", s.ID, s.Seq, at.UnixMilli())
	if nonce != "" {
		id += "-" + nonce
	}
	s.Round = &Round{ID: id, Started: at, Asked: max(p.Ask, p.Quorum)}
	fx.Recheck, fx.RecheckCount = s.Round.ID, s.Round.Asked
}

// answer counts one answer of the verification under way: quorum failures
// confirm the server down; once quorum can no longer be reached it was a
// false alarm.
func (s *Server) answer(fx *Effects, r *events.ProbeResult, f Facts, p Policy) {
	at := r.Started
	rd := s.Round
	rd.Answered = append(rd.Answered, r.Task)
	if r.OK {
		rd.OK++
	} else {
		rd.Failed++
		s.Fails++
		s.Reason = r.Reason
		s.addLocation(r.Location)
	}
	switch {
	case rd.Failed >= p.Quorum && (!rd.Hung || rd.OriginFailed):
		s.confirm(fx, at, r, f, p)
	case rd.OK > rd.Asked-p.Quorum:
		s.falseAlarm(fx, at, f, fmt.Sprintf("%d of %d re-checks succeeded", rd.OK, rd.Asked))
	}
}

// falseAlarm ends a verification that did not confirm the failure.
func (s *Server) falseAlarm(fx *Effects, at time.Time, f Facts, why string) {
	s.FalseAlarms++
	fa := &events.FalseAlarm{
		Server: s.ID, Box: f.Box, Seen: s.FailedSince, Reason: s.Reason,
		Locations: slices.Clone(s.Locations), Why: why,
	}
	if rd := s.Round; rd != nil {
		fa.Asked, fa.Failed, fa.OK = rd.Asked, rd.Failed, rd.OK
	}
	fx.FalseAlarm = fa
	fx.Changes = append(fx.Changes, s.change(&at, events.StateUp, f, "false alarm: "+why))
	fx.FalseAlarmID = fmt.Sprintf("%s/false-alarm/%d-%d", s.ID, s.Seq, at.UnixMilli())
	s.clearTrouble()
	s.Fails = 0
}

func (s *Server) confirm(fx *Effects, at time.Time, r *events.ProbeResult, f Facts, p Policy) {
	s.flip(at, p)
	note := ""
	if rd := s.Round; rd != nil {
		note = fmt.Sprintf("confirmed by %d of %d re-checks", rd.Failed, rd.Asked)
		if rd.Hung {
			note += fmt.Sprintf(", asked while %s's check went unanswered", rd.OriginAt)
		}
		if rd.Fallback {
			note += "; too few live locations, so some re-checks came from where the failure was seen"
		}
	}
	s.Round = nil
	change := s.change(&at, events.StateDown, f, r.Reason)
	change.Flapping = s.Flapping
	if s.Incident != "" {
		// Flapping: the incident opened by the first outage is still open,
		// and nobody is paged again.
		change.Incident = s.Incident
		fx.Changes = append(fx.Changes, change)
		return
	}
	s.Incident = IncidentID(s.ID, s.Seq, s.FailedSince)
	s.IncidentOpened = at
	s.IncidentTitle = ServerTitle(s.ID, f.BoxName)
	change.Incident = s.Incident
	fx.Changes = append(fx.Changes, change)
	fx.Opened = &events.IncidentOpened{
		Incident: s.Incident, Opened: at, Title: s.IncidentTitle,
		Servers: []events.AffectedServer{{
			Server: s.ID, Box: f.Box, Check: f.Check, Since: s.FailedSince,
			Reason: s.Reason, Locations: append([]string(nil), s.Locations...), Verification: note,
		}},
	}
}

// change moves s to a new state and describes the move.
func (s *Server) change(at *time.Time, to events.ServerState, f Facts, reason string) Change {
	c := events.ServerStateChanged{
		Server: s.ID, Box: f.Box, From: s.State, To: to, Since: *at, Reason: reason,
		Locations: append([]string(nil), s.Locations...),
	}
	switch {
	case to == events.StateUp && (s.State != events.StateSuspect || s.UpSince.IsZero()):
		s.UpSince = *at
	case to == events.StateUp, to == events.StateSuspect:
		// Still up for all anyone knows.
	default:
		s.UpSince = time.Time{}
	}
	s.State, s.Since = to, *at
	s.Seq++
	// The time makes the id unique even if the stored state were lost and
	// Seq began again.
	return Change{ID: fmt.Sprintf("%s/state/%d-%d", s.ID, s.Seq, at.UnixMilli()), ServerStateChanged: c}
}

func (s *Server) clearTrouble() {
	s.FailedSince, s.Reason, s.Locations, s.Round = time.Time{}, "", nil, nil
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
