package judge

import (
	"fmt"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// isOrigin reports whether r is the result of the check whose going
// unanswered began the verification under way.
func (s *Server) isOrigin(r *events.ProbeResult) bool {
	return s.Round != nil && s.Round.Hung && !r.Unanswered && r.Task == s.Round.Origin && r.Location == s.Round.OriginAt
}

// isAnswer reports whether r answers the verification under way: its id,
// from one of the locations asked, to the very task that location was
// sent. Anything else claiming to answer is not counted.
func (s *Server) isAnswer(r *events.ProbeResult) bool {
	if s.Round == nil || r.Correlation == "" || r.Correlation != s.Round.ID {
		return false
	}
	for i, loc := range s.Round.Locations {
		if loc == r.Location && r.Task == TaskID(s.Round.ID, loc, i) {
			return true
		}
	}
	return false
}

// unanswered starts a verification while a scheduled check of a server
// that was up still waits for its answer: a server that hangs is then
// confirmed about when that check times out, not a whole timeout later.
// Nothing else is counted: the check's own result decides with the
// re-checks (originAnswered).
func (s *Server) unanswered(fx *Effects, r *events.ProbeResult, f Facts, p Policy) {
	if s.State != events.StateUp || f.Maintenance != "" || p.Quorum <= 0 || !r.Started.After(s.Last) {
		return
	}
	at := r.Started
	s.FailedSince, s.Reason, s.Locations = at, r.Reason, []string{r.Location}
	fx.Changes = append(fx.Changes, s.change(&at, events.StateSuspect, f, r.Reason))
	s.ask(fx, at, r, p, f.Nonce)
	s.Round.Hung, s.Round.Origin, s.Round.OriginAt = true, r.Task, r.Location
}

// originAnswered counts the result of the check whose going unanswered
// began the verification: an answer at last was a slow server, no
// outage; a failure confirms it with a quorum of the re-checks.
func (s *Server) originAnswered(fx *Effects, r *events.ProbeResult, f Facts, p Policy) {
	rd := s.Round
	if r.OK {
		s.falseAlarm(fx, r.Started, f, fmt.Sprintf("%s had its answer after %s: slow, not down", r.Location, time.Duration(r.LatencyMS*float64(time.Millisecond)).Round(100*time.Millisecond)))
		return
	}
	rd.OriginFailed = true
	s.Fails++
	s.Reason = r.Reason
	if rd.Failed >= p.Quorum {
		s.confirm(fx, r.Started, r, f, p)
	}
}
