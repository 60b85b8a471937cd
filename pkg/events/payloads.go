package events

import (
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"
)

// ProbeTask asks the prober at Location to run one check now. Scheduled tasks
// carry the slot they belong to; their id is "<server>/<slot>" so that every
// scheduler replica publishing the same slot stores one task.
type ProbeTask struct {
	Server    string    `json:"server"`
	Location  string    `json:"location"`
	Check     string    `json:"check"`      // the check URL from the config
	TimeoutMS int64     `json:"timeout_ms"` // the sender's configured timeout; the prober uses its own config's
	Slot      int64     `json:"slot"`       // interval number since the Unix epoch; 0 for on-demand checks
	Due       time.Time `json:"due"`        // when the check should run
	Purpose   Purpose   `json:"purpose"`
	// Correlation, on an on-demand task, is copied to the result so that
	// whoever asked can tell its answers from the scheduled ones.
	Correlation string        `json:"correlation,omitempty"`
	Options     *CheckOptions `json:"options,omitempty"`
}

// CheckOptions refine a check beyond its URL. Secrets never travel in an
// event: a prober finds a login's password in its own configuration.
type CheckOptions struct {
	ExpectStatus int    `json:"expect_status,omitempty"` // HTTP status wanted; 0: any below 400
	Keyword      string `json:"keyword,omitempty"`       // must appear in an HTTP body
	CertWarnDays int    `json:"cert_warn_days,omitempty"`
	StartTLS     bool   `json:"starttls,omitempty"` // SMTP: upgrade and verify the certificate
	Username     string `json:"username,omitempty"` // FTP login
}

// Purpose says why a check was asked for.
type Purpose string

// The purposes of a probe task.
const (
	PurposeScheduled Purpose = "scheduled" // the regular check of every interval
	PurposeRecheck   Purpose = "recheck"   // the verifier confirming a failure
	PurposeOnDemand  Purpose = "on-demand" // asked for by a person or another service
)

func (*ProbeTask) EventType() Type   { return TypeProbeTask }
func (t *ProbeTask) Subject() string { return SubjectProbeTask(t.Location) }
func (t *ProbeTask) Validate() error {
	if err := checkToken("server", t.Server); err != nil {
		return err
	}
	if err := checkToken("location", t.Location); err != nil {
		return err
	}
	if err := checkURL(t.Check); err != nil {
		return err
	}
	switch {
	case t.TimeoutMS <= 0:
		return fmt.Errorf("timeout_ms must be positive, got %d", t.TimeoutMS)
	case t.Slot < 0:
		return fmt.Errorf("slot must not be negative, got %d", t.Slot)
	case t.Due.IsZero():
		return errors.New("missing due")
	}
	switch t.Purpose {
	case PurposeScheduled, PurposeRecheck, PurposeOnDemand, PurposeCanary:
		return nil
	}
	return fmt.Errorf("unknown purpose %q", t.Purpose)
}

// Timeout is TimeoutMS as a duration.
func (t *ProbeTask) Timeout() time.Duration { return time.Duration(t.TimeoutMS) * time.Millisecond }

// ProbeResult is what one location saw when it checked one server.
type ProbeResult struct {
	Server      string    `json:"server"`
	Location    string    `json:"location"`
	Check       string    `json:"check"`
	Task        string    `json:"task"` // id of the task that asked for it
	Purpose     Purpose   `json:"purpose"`
	Correlation string    `json:"correlation,omitempty"` // the task's, for on-demand checks
	Started     time.Time `json:"started"`
	LatencyMS   float64   `json:"latency_ms"`
	OK          bool      `json:"ok"`
	Reason      string    `json:"reason,omitempty"` // why it failed, in words for a person: "connection refused"
	// Warning, on a check that passed, is something that will fail if
	// nobody acts: "certificate expires in 5 days". The server works.
	Warning string `json:"warning,omitempty"`
	// Unanswered, on a scheduled check, says the check is still waiting
	// for the server after checks.hang_after: not a failure yet, but
	// reason enough to ask other locations now rather than after the
	// whole timeout. The check's own result follows, with the same task.
	Unanswered bool `json:"unanswered,omitempty"`
}

func (*ProbeResult) EventType() Type   { return TypeProbeResult }
func (r *ProbeResult) Subject() string { return SubjectProbeResult(r.Server, r.Location) }
func (r *ProbeResult) Validate() error {
	if err := checkToken("server", r.Server); err != nil {
		return err
	}
	if err := checkToken("location", r.Location); err != nil {
		return err
	}
	switch {
	case r.Task == "":
		return errors.New("missing task")
	case r.Started.IsZero():
		return errors.New("missing started")
	case r.LatencyMS < 0:
		return fmt.Errorf("latency_ms must not be negative, got %g", r.LatencyMS)
	case !r.OK && r.Reason == "":
		return errors.New("a failed result needs a reason")
	case r.Unanswered && (r.OK || r.Purpose != PurposeScheduled):
		return errors.New("only a scheduled check not yet answered is unanswered")
	case len(r.Reason) > MaxReason || len(r.Warning) > MaxReason:
		return fmt.Errorf("reason or warning longer than %d bytes", MaxReason)
	}
	return nil
}

// MaxReason bounds the free text a result carries: it is read by people
// and repeated in every message about the server. A result over it is
// refused; a prober clips its own with Clip.
const MaxReason = 500

// Clip shortens s to at most n bytes, on a character boundary, ending
// with "…" when it was cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// ServerState is the verifier's judgement of one server.
type ServerState string

// The server states.
const (
	StateUnknown ServerState = "unknown" // not checked yet
	StateUp      ServerState = "up"
	StateSuspect ServerState = "suspect" // failed once, being verified: nobody is told yet
	StateDown    ServerState = "down"    // failure confirmed
	// StateMaintenance: in a planned window; whatever the checks see, nobody is paged.
	StateMaintenance ServerState = "maintenance"
	// StateNotInService: being prepared, or out of the cluster on purpose:
	// shown red, never checked, never paged.
	StateNotInService ServerState = "not_in_service"
)

// Valid reports whether s is one of the known states.
func (s ServerState) Valid() bool {
	switch s {
	case StateUnknown, StateUp, StateSuspect, StateDown, StateMaintenance, StateNotInService:
		return true
	}
	return false
}

// ServerStateChanged records one server moving from one state to another.
type ServerStateChanged struct {
	Server    string      `json:"server"`
	Box       string      `json:"box"`
	From      ServerState `json:"from"`
	To        ServerState `json:"to"`
	Since     time.Time   `json:"since"`              // when the new state began
	Reason    string      `json:"reason,omitempty"`   // the failure that led here, if any
	Incident  string      `json:"incident,omitempty"` // the incident this change opened or resolved
	Locations []string    `json:"locations,omitempty"`
	// Flapping: the server changes state too often; its incident stays
	// open through the changes until it settles.
	Flapping bool `json:"flapping,omitempty"`
}

func (*ServerStateChanged) EventType() Type   { return TypeServerStateChanged }
func (c *ServerStateChanged) Subject() string { return SubjectServerChanged(c.Server) }
func (c *ServerStateChanged) Validate() error {
	if err := checkToken("server", c.Server); err != nil {
		return err
	}
	if err := checkToken("box", c.Box); err != nil {
		return err
	}
	switch {
	case !c.From.Valid():
		return fmt.Errorf("unknown state %q in from", c.From)
	case !c.To.Valid():
		return fmt.Errorf("unknown state %q in to", c.To)
	case c.From == c.To:
		return fmt.Errorf("from and to are both %q", c.From)
	case c.Since.IsZero():
		return errors.New("missing since")
	case c.Incident != "" && !ValidToken(c.Incident):
		return fmt.Errorf("incident %q is not a valid id", c.Incident)
	}
	return nil
}

// AffectedServer is one server of an incident as staff need to see it.
type AffectedServer struct {
	Server    string    `json:"server"`
	Box       string    `json:"box"`
	Check     string    `json:"check"`
	Since     time.Time `json:"since"`            // first failure seen
	Reason    string    `json:"reason,omitempty"` // what the checks saw
	Locations []string  `json:"locations,omitempty"`
	// Verification says how the failure was confirmed: by how many
	// re-checks, and whether from other locations.
	Verification string `json:"verification,omitempty"`
	// BoxState is the state of the server's box once it is down, and
	// StillUp the servers of the box still answering: whether the service
	// is still available is the first thing staff need to know.
	BoxState BoxState `json:"box_state,omitempty"`
	StillUp  []string `json:"still_up,omitempty"`
}

// FalseAlarm records a failure that the re-checks from other locations did
// not confirm: nobody was told, and this is how anyone can find out.
type FalseAlarm struct {
	Server    string    `json:"server"`
	Box       string    `json:"box"`
	Seen      time.Time `json:"seen"`   // when the failure was seen
	Reason    string    `json:"reason"` // what was seen
	Locations []string  `json:"locations,omitempty"`
	Why       string    `json:"why"` // why it is judged false
	Asked     int       `json:"asked"`
	Failed    int       `json:"failed"`
	OK        int       `json:"ok"`
}

func (*FalseAlarm) EventType() Type   { return TypeFalseAlarm }
func (a *FalseAlarm) Subject() string { return SubjectFalseAlarm(a.Server) }
func (a *FalseAlarm) Validate() error {
	if err := checkToken("server", a.Server); err != nil {
		return err
	}
	if err := checkToken("box", a.Box); err != nil {
		return err
	}
	switch {
	case a.Seen.IsZero():
		return errors.New("missing seen")
	case a.Why == "":
		return errors.New("missing why")
	case a.Asked < 0 || a.Failed < 0 || a.OK < 0:
		return errors.New("negative counts")
	}
	return nil
}

func (a *AffectedServer) validate() error {
	if err := checkToken("server", a.Server); err != nil {
		return err
	}
	if err := checkToken("box", a.Box); err != nil {
		return err
	}
	if a.Since.IsZero() {
		return fmt.Errorf("server %s: missing since", a.Server)
	}
	return nil
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("missing check")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("check is not a URL: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("check %q needs a scheme and a host", s)
	}
	return nil
}

// BoxState is whether a box's service is available: a box of redundant
// servers is up while one of its servers is.
type BoxState string

// The box states.
const (
	BoxOperational BoxState = "operational" // every server in service is up
	BoxDegraded    BoxState = "degraded"    // some down, at least one up: the service is available; staff know, the public need not
	BoxDown        BoxState = "down"        // every server in service is down: an outage
	// BoxMaintenance: every server in service is in a maintenance window, so
	// the service is off on purpose (the public were warned of it).
	BoxMaintenance BoxState = "maintenance"
)

// Valid reports whether b is one of the known box states.
func (b BoxState) Valid() bool {
	return b == BoxOperational || b == BoxDegraded || b == BoxDown || b == BoxMaintenance
}

// BoxStateChanged records a box moving from one state to another.
type BoxStateChanged struct {
	Box   string    `json:"box"`
	From  BoxState  `json:"from,omitempty"` // empty for a box never judged before
	To    BoxState  `json:"to"`
	Since time.Time `json:"since"`
	Up    []string  `json:"up,omitempty"`   // its servers that are up
	Down  []string  `json:"down,omitempty"` // its servers that are down
}

func (*BoxStateChanged) EventType() Type   { return TypeBoxStateChanged }
func (c *BoxStateChanged) Subject() string { return SubjectBoxChanged(c.Box) }
func (c *BoxStateChanged) Validate() error {
	if err := checkToken("box", c.Box); err != nil {
		return err
	}
	switch {
	case c.From != "" && !c.From.Valid():
		return fmt.Errorf("unknown box state %q in from", c.From)
	case !c.To.Valid():
		return fmt.Errorf("unknown box state %q in to", c.To)
	case c.From == c.To:
		return fmt.Errorf("from and to are both %q", c.To)
	case c.Since.IsZero():
		return errors.New("missing since")
	}
	return nil
}

// MaintenanceSet announces a maintenance window, new or changed, from the
// config or started at run time. Customers are warned of maintenance that
// takes a service down, not of maintenance that leaves it working: Public
// is set when the window takes every server of a box out of service, and
// Boxes names those boxes.
type MaintenanceSet struct {
	Maintenance string    `json:"maintenance"` // stable id of the window
	Servers     []string  `json:"servers"`
	From        time.Time `json:"from"`
	Until       time.Time `json:"until"`
	Reason      string    `json:"reason,omitempty"`
	Public      bool      `json:"public"`
	Boxes       []string  `json:"boxes,omitempty"`
	By          string    `json:"by,omitempty"` // "config", or who started it
}

func (*MaintenanceSet) EventType() Type   { return TypeMaintenanceSet }
func (m *MaintenanceSet) Subject() string { return SubjectMaintenance(m.Maintenance, "set") }
func (m *MaintenanceSet) Validate() error {
	if err := checkToken("maintenance", m.Maintenance); err != nil {
		return err
	}
	if len(m.Servers) == 0 {
		return errors.New("a maintenance window needs servers")
	}
	for _, s := range m.Servers {
		if err := checkToken("server", s); err != nil {
			return err
		}
	}
	switch {
	case m.From.IsZero() || m.Until.IsZero():
		return errors.New("a maintenance window needs from and until")
	case !m.Until.After(m.From):
		return errors.New("until must be after from")
	case m.Public != (len(m.Boxes) > 0):
		return errors.New("a public window names the boxes it takes down, an internal one none")
	}
	return nil
}

// In reports whether the window covers server at t.
func (m *MaintenanceSet) In(server string, t time.Time) bool {
	if t.Before(m.From) || !t.Before(m.Until) {
		return false
	}
	for _, s := range m.Servers {
		if s == server {
			return true
		}
	}
	return false
}

// MaintenanceEnded records a window closed before its time, or withdrawn
// before it began.
type MaintenanceEnded struct {
	Maintenance string    `json:"maintenance"`
	Ended       time.Time `json:"ended"`
	By          string    `json:"by,omitempty"`
}

func (*MaintenanceEnded) EventType() Type   { return TypeMaintenanceEnded }
func (m *MaintenanceEnded) Subject() string { return SubjectMaintenance(m.Maintenance, "ended") }
func (m *MaintenanceEnded) Validate() error {
	if err := checkToken("maintenance", m.Maintenance); err != nil {
		return err
	}
	if m.Ended.IsZero() {
		return errors.New("missing ended")
	}
	return nil
}

// Banner is what the hosting web pages show during a public outage, kept
// in the banner bucket for the status page's banner script to serve.
type Banner struct {
	On        bool      `json:"on"`
	Message   string    `json:"message,omitempty"`
	Link      string    `json:"link,omitempty"`
	Incidents []string  `json:"incidents,omitempty"` // the public incidents it is up for
	Since     time.Time `json:"since,omitzero"`
}
