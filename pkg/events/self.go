package events

import (
	"errors"
	"fmt"
	"time"
)

// Self alerts are the alarm telling its own staff that a part of itself
// stopped: a prober location silent, a service with no active instance, a
// consumer falling behind, a provider refusing, instances running
// different configs. They are not incidents: they travel on their own
// subjects (self.>), which no public service (status page, escalator,
// failover) subscribes to, so that none can ever reach the public.
const (
	TypeSelfRaised  Type = "self.raised"
	TypeSelfCleared Type = "self.cleared"
)

// SubjectSelf is every self alert's raising and clearing.
const SubjectSelf = "self.>"

// SubjectSelfAlert is where one step ("raised", "cleared") of one self
// alert goes.
func SubjectSelfAlert(alert, step string) string { return "self." + alert + "." + step }

// BucketSelf holds the self-watcher's state under SelfStateKey, and the
// notifier's record of each provider under SelfProviderKey(channel).
const (
	BucketSelf   = "tocsin-self"
	SelfStateKey = "state"
)

// SelfProviderKey is where the notifier records how a channel's provider
// is doing: "provider.sms", "provider.email", "provider.voice".
func SelfProviderKey(channel string) string { return "provider." + channel }

// ProviderHealth is the notifier's record of one channel's provider, in
// BucketSelf: since when it has refused everything, if it does. Written
// when the provider starts failing and when it works again, not per
// message.
type ProviderHealth struct {
	Channel  string    `json:"channel"`  // sms, email, voice
	Provider string    `json:"provider"` // twilio, smtp
	Failing  bool      `json:"failing"`
	Since    time.Time `json:"since"`           // the first failure in a row, or the first success after
	Error    string    `json:"error,omitempty"` // the latest failure, without secrets or addresses
	At       time.Time `json:"at"`              // the latest write
}

// SelfKind is what part of the alarm a self alert is about.
type SelfKind string

// The kinds of self alert.
const (
	SelfLocation    SelfKind = "location"     // a prober location stopped checking
	SelfService     SelfKind = "service"      // a service nobody runs, or no instance active
	SelfLag         SelfKind = "lag"          // a consumer falling behind
	SelfDeadLetters SelfKind = "dead_letters" // messages being set aside
	SelfProvider    SelfKind = "provider"     // SMS, email or voice provider refusing
	SelfConfig      SelfKind = "config"       // instances running different configs
)

// Valid reports whether k is a known kind.
func (k SelfKind) Valid() bool {
	switch k {
	case SelfLocation, SelfService, SelfLag, SelfDeadLetters, SelfProvider, SelfConfig:
		return true
	}
	return false
}

// SelfRaised records that a part of the alarm stopped working. Its alert
// id is stable for one episode: the same condition seen again by another
// watcher, or after a restart, raises the same id, which JetStream
// stores once.
type SelfRaised struct {
	Alert  string    `json:"alert"` // "<kind>-<what>-<unix seconds raised>"
	Kind   SelfKind  `json:"kind"`
	What   string    `json:"what"` // the location, service, consumer, channel
	Raised time.Time `json:"raised"`
	// Since is when the trouble began as far as is known: the last
	// heartbeat of a silent location, a provider's first failure.
	Since time.Time `json:"since,omitzero"`
	// Title says what stopped; Action what to do about it.
	Title  string `json:"title"`
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
}

func (*SelfRaised) EventType() Type   { return TypeSelfRaised }
func (r *SelfRaised) Subject() string { return SubjectSelfAlert(r.Alert, "raised") }
func (r *SelfRaised) Validate() error {
	return checkSelf(r.Alert, r.Kind, r.What, r.Title, r.Raised, len(r.Action)+len(r.Detail))
}

// SelfCleared records that the part of the alarm a self alert was about
// works again.
type SelfCleared struct {
	Alert   string    `json:"alert"`
	Kind    SelfKind  `json:"kind"`
	What    string    `json:"what"`
	Raised  time.Time `json:"raised"`
	Cleared time.Time `json:"cleared"`
	Title   string    `json:"title"` // the alert's, as raised
}

func (*SelfCleared) EventType() Type   { return TypeSelfCleared }
func (c *SelfCleared) Subject() string { return SubjectSelfAlert(c.Alert, "cleared") }
func (c *SelfCleared) Validate() error {
	if err := checkSelf(c.Alert, c.Kind, c.What, c.Title, c.Raised, 0); err != nil {
		return err
	}
	if c.Cleared.Before(c.Raised) {
		return errors.New("cleared before it was raised")
	}
	return nil
}

// maxSelfText bounds a self alert's words: a title, an action, a detail.
const maxSelfText = 2000

func checkSelf(alert string, kind SelfKind, what, title string, raised time.Time, more int) error {
	if err := checkToken("alert", alert); err != nil {
		return err
	}
	switch {
	case !kind.Valid():
		return fmt.Errorf("unknown kind %q", kind)
	case what == "" || len(what) > 200 || !printableText(what):
		return fmt.Errorf("what %q must be 1 to 200 printable characters", what)
	case title == "":
		return errors.New("missing title")
	case len(title)+more > maxSelfText:
		return fmt.Errorf("title, action and detail longer than %d bytes", maxSelfText)
	case raised.IsZero():
		return errors.New("missing raised")
	}
	return nil
}

// printableText reports whether s has no control characters (spaces are
// fine).
func printableText(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
