package events

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

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
	Via      string    `json:"via"` // sms, voice, link or cli
	At       time.Time `json:"at"`
	Note     string    `json:"note,omitempty"`
}

// The ways to acknowledge.
const (
	AckViaSMS   = "sms"
	AckViaVoice = "voice" // a key pressed during a call
	AckViaLink  = "link"
	AckViaCLI   = "cli"
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
	case a.Via != AckViaSMS && a.Via != AckViaVoice && a.Via != AckViaLink && a.Via != AckViaCLI:
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
