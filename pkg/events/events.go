// Package events is the contract between Tocsin's services: every event type,
// the subjects it travels on, the streams and key-value buckets that hold it,
// and the versioned JSON envelope around it. Services share nothing else, so a
// change here is a change of the wire format; the golden files in testdata pin it.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the envelope version this package writes. Decoding refuses any
// other, so a newer producer is noticed rather than half understood.
const Version = 1

// Type names an event. It doubles as the last part of the event's kind in logs.
type Type string

// The event types. Events are facts in the past tense; tasks are requests.
const (
	TypeProbeTask          Type = "probe.task"
	TypeProbeResult        Type = "probe.result"
	TypeServerStateChanged Type = "server.state_changed"
	TypeFalseAlarm         Type = "server.false_alarm"
	TypeServerAction       Type = "server.action"
	TypeBoxStateChanged    Type = "box.state_changed"
	TypeIncidentOpened     Type = "incident.opened"
	TypeIncidentUpdated    Type = "incident.updated"
	TypeIncidentAcked      Type = "incident.acknowledged"
	TypeIncidentNote       Type = "incident.note"
	TypeIncidentEscalated  Type = "incident.escalated"
	TypeIncidentNotified   Type = "incident.notified"
	TypeIncidentResolved   Type = "incident.resolved"
	TypeMaintenanceSet     Type = "maintenance.set"
	TypeMaintenanceEnded   Type = "maintenance.ended"
)

// Payload is the data of one event type. Validate reports the first thing that
// makes the payload unusable; Subject is where the event is published, derived
// from the payload so that a subject and its data can never disagree.
type Payload interface {
	EventType() Type
	Subject() string
	Validate() error
}

// Event is a decoded envelope with its typed payload.
type Event struct {
	ID     string    // unique per event; also the JetStream message id, so publishing twice stores once
	Type   Type      // what Payload holds
	Time   time.Time // when the fact happened (not when it was published)
	Source string    // the service and instance that produced it, e.g. "prober@lon1"
	Data   Payload
}

// envelope is the wire form of an Event.
type envelope struct {
	Version int             `json:"v"`
	ID      string          `json:"id"`
	Type    Type            `json:"type"`
	Time    time.Time       `json:"time"`
	Source  string          `json:"source"`
	Data    json.RawMessage `json:"data"`
}

// New builds an event around a payload. The id must be stable for the fact it
// describes wherever redelivery could make a service produce it twice.
func New(id, source string, at time.Time, p Payload) Event {
	return Event{ID: id, Type: p.EventType(), Time: at.UTC(), Source: source, Data: p}
}

// Subject is the subject the event is published on.
func (e Event) Subject() string { return e.Data.Subject() }

// Validate checks the envelope and its payload.
func (e Event) Validate() error {
	switch {
	case e.ID == "":
		return errors.New("missing id")
	case len(e.ID) > 200:
		return errors.New("id longer than 200 characters")
	case !printable(e.ID):
		return fmt.Errorf("id %q has spaces or control characters", e.ID)
	case e.Time.IsZero():
		return errors.New("missing time")
	case e.Source == "":
		return errors.New("missing source")
	case e.Data == nil:
		return errors.New("missing data")
	case e.Data.EventType() != e.Type:
		return fmt.Errorf("type %q does not match data of type %q", e.Type, e.Data.EventType())
	}
	if err := e.Data.Validate(); err != nil {
		return fmt.Errorf("%s data: %w", e.Type, err)
	}
	return nil
}

// Marshal validates the event and encodes it as its envelope.
func (e Event) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("invalid event %q: %w", e.ID, err)
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return nil, fmt.Errorf("encode %s data: %w", e.Type, err)
	}
	return json.Marshal(envelope{Version: Version, ID: e.ID, Type: e.Type, Time: e.Time.UTC(), Source: e.Source, Data: data})
}

// Decode parses and validates an envelope received on subject. An empty
// subject skips the check that the event belongs where it was found. Every
// error says what is wrong in words fit for a dead-letter reason.
func Decode(subject string, b []byte) (Event, error) {
	if ev, ok := decodeFast(subject, b); ok {
		return ev, nil
	}
	return decode(subject, b)
}

// decode is Decode for any input: encoding/json reads the envelope, then
// its data, and every error is explained.
func decode(subject string, b []byte) (Event, error) {
	var env envelope
	if err := strictUnmarshal(b, &env); err != nil {
		return Event{}, fmt.Errorf("malformed envelope: %w", err)
	}
	if env.Version != Version {
		return Event{}, fmt.Errorf("unsupported envelope version %d (this build reads %d)", env.Version, Version)
	}
	p, err := newPayload(env.Type)
	if err != nil {
		return Event{}, err
	}
	if len(env.Data) == 0 || bytes.Equal(env.Data, []byte("null")) {
		return Event{}, fmt.Errorf("%s event %q: missing data", env.Type, env.ID)
	}
	if err := strictUnmarshal(env.Data, p); err != nil {
		return Event{}, fmt.Errorf("%s event %q: malformed data: %w", env.Type, env.ID, err)
	}
	ev := Event{ID: env.ID, Type: env.Type, Time: env.Time, Source: env.Source, Data: p}
	if err := ev.Validate(); err != nil {
		return Event{}, fmt.Errorf("%s event %q: %w", env.Type, env.ID, err)
	}
	if subject != "" && ev.Subject() != subject {
		return Event{}, fmt.Errorf("%s event %q belongs on %q, found on %q", env.Type, env.ID, ev.Subject(), subject)
	}
	return ev, nil
}

func newPayload(t Type) (Payload, error) {
	switch t {
	case TypeProbeTask:
		return &ProbeTask{}, nil
	case TypeProbeResult:
		return &ProbeResult{}, nil
	case TypeProbeSchedule:
		return &ProbeSchedule{}, nil
	case TypeProbeResultBatch:
		return &ProbeResultBatch{}, nil
	case TypeServerStateChanged:
		return &ServerStateChanged{}, nil
	case TypeFalseAlarm:
		return &FalseAlarm{}, nil
	case TypeServerAction:
		return &ServerAction{}, nil
	case TypeBoxStateChanged:
		return &BoxStateChanged{}, nil
	case TypeIncidentOpened:
		return &IncidentOpened{}, nil
	case TypeIncidentUpdated:
		return &IncidentUpdated{}, nil
	case TypeIncidentAcked:
		return &IncidentAcknowledged{}, nil
	case TypeIncidentNote:
		return &IncidentNote{}, nil
	case TypeIncidentEscalated:
		return &IncidentEscalated{}, nil
	case TypeIncidentNotified:
		return &IncidentNotified{}, nil
	case TypeIncidentResolved:
		return &IncidentResolved{}, nil
	case TypeMaintenanceSet:
		return &MaintenanceSet{}, nil
	case TypeMaintenanceEnded:
		return &MaintenanceEnded{}, nil
	case TypePushReport:
		return &PushReport{}, nil
	case TypeCanaryJudged:
		return &CanaryJudged{}, nil
	case TypeSelfRaised:
		return &SelfRaised{}, nil
	case TypeSelfCleared:
		return &SelfCleared{}, nil
	case "":
		return nil, errors.New("missing event type")
	}
	return nil, fmt.Errorf("unknown event type %q", t)
}

// strictUnmarshal refuses trailing data (json.Unmarshal does). Unknown
// fields are allowed on purpose: a newer producer may add optional fields
// without breaking older consumers.
func strictUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// ValidToken reports whether s can be a server, box, location or incident id:
// it becomes one token of a NATS subject and of a key-value key, so it may not
// hold dots, wildcards or spaces. It runs for every event decoded, hence no
// regular expression.
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("missing %s", what)
	}
	if !ValidToken(s) {
		return fmt.Errorf("%s %q must be letters, digits, '-' or '_' (at most 63), starting with a letter or digit", what, s)
	}
	return nil
}

func printable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
