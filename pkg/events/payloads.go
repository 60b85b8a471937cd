package events

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
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
	TimeoutMS int64     `json:"timeout_ms"` // how long the check may take
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
	case PurposeScheduled, PurposeRecheck, PurposeOnDemand:
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

// Severity is how bad an incident is: it decides who is woken, how, and
// whether the public hears of it.
type Severity string

// The severities, mildest first.
const (
	// SeverityWarning: something will fail if nobody acts (a certificate
	// or a domain about to expire); every server still works. Told by
	// email, never by SMS, never to the public, never failed over.
	SeverityWarning Severity = "warning"
	// SeverityDegraded: a box still serves, with fewer servers.
	SeverityDegraded Severity = "degraded"
	// SeverityOutage: a box serves nobody: customers are hit.
	SeverityOutage Severity = "outage"
)

// Rank orders severities: 0 for none, then warning, degraded, outage.
func (s Severity) Rank() int {
	switch s {
	case SeverityWarning:
		return 1
	case SeverityDegraded:
		return 2
	case SeverityOutage:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the known severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Worse reports whether s is more severe than t.
func (s Severity) Worse(t Severity) bool { return s.Rank() > t.Rank() }

func checkSeverity(s Severity) error {
	if s != "" && !s.Valid() {
		return fmt.Errorf("unknown severity %q", s)
	}
	return nil
}

// IncidentOpened records a confirmed outage. Its id is stable: the same
// outage, judged again after a redelivery or a restart, gets the same id.
type IncidentOpened struct {
	Incident string           `json:"incident"`
	Opened   time.Time        `json:"opened"`
	Title    string           `json:"title"`
	Servers  []AffectedServer `json:"servers"`
	// Datacentre is where the servers are; servers of the same datacentre
	// failing close together join this incident rather than opening more.
	Datacentre string `json:"datacentre,omitempty"`
	// Severity is the incident's as it opens; empty in events written
	// before severities existed, which were all server failures.
	Severity Severity `json:"severity,omitempty"`
	// Flapping: opened by a server already going down and up again and
	// again, paged about the first time. Staff are told by email; nobody
	// is woken for it again.
	Flapping bool `json:"flapping,omitempty"`
}

func (*IncidentOpened) EventType() Type   { return TypeIncidentOpened }
func (o *IncidentOpened) Subject() string { return SubjectIncident(o.Incident, "opened") }
func (o *IncidentOpened) Validate() error {
	if err := checkToken("incident", o.Incident); err != nil {
		return err
	}
	switch {
	case o.Opened.IsZero():
		return errors.New("missing opened")
	case o.Title == "":
		return errors.New("missing title")
	case len(o.Servers) == 0:
		return errors.New("an incident needs at least one server")
	}
	if err := checkSeverity(o.Severity); err != nil {
		return err
	}
	for i := range o.Servers {
		if err := o.Servers[i].validate(); err != nil {
			return err
		}
	}
	return nil
}

// IncidentUpdated records a change within an open incident: servers that
// joined it (a datacentre losing power fails box after box), servers back
// while others are still down, boxes whose service changed state.
type IncidentUpdated struct {
	Incident  string           `json:"incident"`
	Seq       int64            `json:"seq"` // the update's number within the incident, from 1
	At        time.Time        `json:"at"`
	Opened    time.Time        `json:"opened"`
	Title     string           `json:"title"` // the incident's title as it reads now
	Added     []AffectedServer `json:"added,omitempty"`
	Recovered []string         `json:"recovered,omitempty"`
	Boxes     []BoxStatus      `json:"boxes,omitempty"` // boxes whose state changed
	Down      []string         `json:"down"`            // the servers still down
	// Flapping are servers just marked flapping: going down and up again
	// and again, they stay in the incident, counted down, and nobody is
	// paged about them until they have been up a while.
	Flapping []string `json:"flapping,omitempty"`
	// Withdrawn are servers that left the incident by being taken out of
	// service (a maintenance window, marked not in service, removed from
	// the config): they did not recover, and no message may say so.
	Withdrawn []string `json:"withdrawn,omitempty"`
	// Severity is the incident's as of this update.
	Severity Severity `json:"severity,omitempty"`
}

// BoxStatus is a box's state within an incident, and the servers of it
// still answering.
type BoxStatus struct {
	Box   string   `json:"box"`
	State BoxState `json:"state"`
	Up    []string `json:"up,omitempty"`
}

func (*IncidentUpdated) EventType() Type   { return TypeIncidentUpdated }
func (u *IncidentUpdated) Subject() string { return SubjectIncident(u.Incident, "updated") }
func (u *IncidentUpdated) Validate() error {
	if err := checkToken("incident", u.Incident); err != nil {
		return err
	}
	switch {
	case u.Seq < 1:
		return fmt.Errorf("seq must be at least 1, got %d", u.Seq)
	case u.At.IsZero():
		return errors.New("missing at")
	case u.Title == "":
		return errors.New("missing title")
	case len(u.Added) == 0 && len(u.Recovered) == 0 && len(u.Boxes) == 0 && len(u.Flapping) == 0 && len(u.Withdrawn) == 0:
		return errors.New("an update needs servers added, recovered, withdrawn or flapping, or a box changed")
	}
	if err := checkSeverity(u.Severity); err != nil {
		return err
	}
	for _, f := range append(slices.Clone(u.Flapping), u.Withdrawn...) {
		if err := checkToken("server", f); err != nil {
			return err
		}
	}
	for i := range u.Added {
		if err := u.Added[i].validate(); err != nil {
			return err
		}
	}
	for _, b := range u.Boxes {
		if err := checkToken("box", b.Box); err != nil {
			return err
		}
		if !b.State.Valid() {
			return fmt.Errorf("box %s: unknown state %q", b.Box, b.State)
		}
	}
	return nil
}

// IncidentAcknowledged records that a person has taken an incident on:
// reminders stop, and the escalator cancels what the config says an
// acknowledgement cancels.
type IncidentAcknowledged struct {
	Incident string    `json:"incident"`
	By       string    `json:"by"`  // the staff member's name
	Via      string    `json:"via"` // sms, link or cli
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"`
}

// The ways to acknowledge.
const (
	AckViaSMS  = "sms"
	AckViaLink = "link"
	AckViaCLI  = "cli"
)

func (*IncidentAcknowledged) EventType() Type   { return TypeIncidentAcked }
func (a *IncidentAcknowledged) Subject() string { return SubjectIncident(a.Incident, "acknowledged") }
func (a *IncidentAcknowledged) Validate() error {
	if err := checkToken("incident", a.Incident); err != nil {
		return err
	}
	switch {
	case a.By == "":
		return errors.New("missing by")
	case a.Via != AckViaSMS && a.Via != AckViaLink && a.Via != AckViaCLI:
		return fmt.Errorf("unknown via %q", a.Via)
	case a.At.IsZero():
		return errors.New("missing at")
	}
	return nil
}

// IncidentNote is an update staff publish about an incident, in the words
// customers read: it goes to the status page, to the datacentre's ticket
// thread and, once the incident is public, to the social posts. Status
// takes the Statuspage values.
type IncidentNote struct {
	Incident string    `json:"incident"`
	Seq      int64     `json:"seq"` // the note's number within the incident, from 1; also in its id
	Status   string    `json:"status"`
	Message  string    `json:"message"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// The statuses of an incident note, as the Statuspage API names them.
const (
	NoteInvestigating = "investigating"
	NoteIdentified    = "identified"
	NoteMonitoring    = "monitoring"
	NoteResolved      = "resolved"
)

func (*IncidentNote) EventType() Type   { return TypeIncidentNote }
func (n *IncidentNote) Subject() string { return SubjectIncident(n.Incident, "note") }
func (n *IncidentNote) Validate() error {
	if err := checkToken("incident", n.Incident); err != nil {
		return err
	}
	switch {
	case n.Seq < 1:
		return fmt.Errorf("seq must be at least 1, got %d", n.Seq)
	case n.Status != NoteInvestigating && n.Status != NoteIdentified && n.Status != NoteMonitoring && n.Status != NoteResolved:
		return fmt.Errorf("unknown status %q: investigating, identified, monitoring or resolved", n.Status)
	case n.Message == "":
		return errors.New("missing message")
	case len(n.Message) > 5000:
		return errors.New("message longer than 5000 bytes")
	case n.By == "":
		return errors.New("missing by")
	case n.At.IsZero():
		return errors.New("missing at")
	}
	return nil
}

// IncidentNotified records that the people on call were sent a message
// about an incident: the SMS, or the email that carried it when SMS
// failed, accepted by its provider. Nothing goes to the datacentre or the
// public about a state the people on call have not been sent first.
type IncidentNotified struct {
	Incident string    `json:"incident"`
	Step     string    `json:"step"` // which message: opened, worse-1, …
	At       time.Time `json:"at"`
	// Severity is the severity the message told of, and DownBoxes the
	// boxes it said serve nobody.
	Severity  Severity `json:"severity"`
	DownBoxes []string `json:"down_boxes,omitempty"`
	// Reached is how many people on call took it; 0 when the config
	// leaves nobody to tell, which holds nothing up.
	Reached int `json:"reached"`
}

func (*IncidentNotified) EventType() Type   { return TypeIncidentNotified }
func (n *IncidentNotified) Subject() string { return SubjectIncident(n.Incident, "notified") }
func (n *IncidentNotified) Validate() error {
	if err := checkToken("incident", n.Incident); err != nil {
		return err
	}
	switch {
	case n.Step == "":
		return errors.New("missing step")
	case n.At.IsZero():
		return errors.New("missing at")
	case !n.Severity.Valid():
		return fmt.Errorf("unknown severity %q", n.Severity)
	case n.Reached < 0:
		return errors.New("reached must not be negative")
	}
	for _, b := range n.DownBoxes {
		if err := checkToken("box", b); err != nil {
			return err
		}
	}
	return nil
}

// IncidentEscalated records an escalation step carried out: the datacentre
// emailed, or the public told (X, Facebook, the hosting pages' banner).
type IncidentEscalated struct {
	Incident string    `json:"incident"`
	Step     string    `json:"step"` // datacentre or social
	At       time.Time `json:"at"`
	// Where it went: the datacentres emailed, or the networks posted to
	// with the post ids.
	To []string `json:"to,omitempty"`
}

func (*IncidentEscalated) EventType() Type   { return TypeIncidentEscalated }
func (e *IncidentEscalated) Subject() string { return SubjectIncident(e.Incident, "escalated") }
func (e *IncidentEscalated) Validate() error {
	if err := checkToken("incident", e.Incident); err != nil {
		return err
	}
	switch {
	case e.Step != "datacentre" && e.Step != "social":
		return fmt.Errorf("unknown step %q", e.Step)
	case e.At.IsZero():
		return errors.New("missing at")
	}
	return nil
}

// IncidentResolved records the end of an outage.
type IncidentResolved struct {
	Incident string    `json:"incident"`
	Opened   time.Time `json:"opened"`
	Resolved time.Time `json:"resolved"`
	Title    string    `json:"title"`
	Servers  []string  `json:"servers"`
	// Severity is the worst the incident reached.
	Severity Severity `json:"severity,omitempty"`
	// Withdrawn are the servers taken out of service rather than back up.
	Withdrawn []string `json:"withdrawn,omitempty"`
	// CustomersAffectedMS is how long, in all, a box of the incident served
	// nobody: how long customers were hit, as against how long servers
	// were down.
	CustomersAffectedMS int64 `json:"customers_affected_ms,omitempty"`
}

// CustomersAffected is CustomersAffectedMS as a duration.
func (r *IncidentResolved) CustomersAffected() time.Duration {
	return time.Duration(r.CustomersAffectedMS) * time.Millisecond
}

func (*IncidentResolved) EventType() Type   { return TypeIncidentResolved }
func (r *IncidentResolved) Subject() string { return SubjectIncident(r.Incident, "resolved") }
func (r *IncidentResolved) Validate() error {
	if err := checkToken("incident", r.Incident); err != nil {
		return err
	}
	switch {
	case r.Opened.IsZero():
		return errors.New("missing opened")
	case r.Resolved.Before(r.Opened):
		return errors.New("resolved before it was opened")
	case r.Title == "":
		return errors.New("missing title")
	case len(r.Servers) == 0:
		return errors.New("an incident needs at least one server")
	case r.CustomersAffectedMS < 0:
		return errors.New("customers_affected_ms must not be negative")
	}
	return checkSeverity(r.Severity)
}

// Duration is how long the incident lasted.
func (r *IncidentResolved) Duration() time.Duration { return r.Resolved.Sub(r.Opened) }

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
