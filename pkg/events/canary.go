package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The canary is a check of nothing that goes through the whole pipeline
// each watchdog interval: the scheduler issues it, a prober answers it,
// the verifier judges it and announces it, and the notifier decides on it
// and tells nobody. Each stage leaves a CanaryStage in BucketCanary, so
// that the watchdog can tell an outside dead man's switch that the
// pipeline works end to end, or which stage stopped.
const (
	// CanaryServer is the server a canary task and its result name. The
	// config refuses a server of that id, so that no real server is
	// mistaken for it, nor it for one.
	CanaryServer = "tocsin-canary"
	// CanaryCheck is the check a canary task names: none a prober could
	// run on the network.
	CanaryCheck = "canary://tocsin"
	// PurposeCanary marks the canary task and its result.
	PurposeCanary Purpose = "canary"

	TypeCanaryJudged Type = "canary.judged"

	// SubjectCanaries is every canary event, on StreamEvents: no consumer
	// of incidents or state changes sees one, so none reaches the public
	// page or anyone's phone.
	SubjectCanaries = "canary.>"

	// BucketCanary holds the canary's progress: one CanaryStage per stage
	// and location, under CanaryKey.
	BucketCanary = "tocsin-canary"
)

// The canary's stages, in the order it goes through them.
const (
	StageScheduled = "scheduled" // the scheduler issued it (prober, any replica)
	StageProbed    = "probed"    // a prober at the location answered it
	StageJudged    = "judged"    // the verifier judged the answer and announced it
	StageDecided   = "decided"   // the notifier decided on it and sent nothing
)

// CanaryStages is every stage in order.
var CanaryStages = []string{StageScheduled, StageProbed, StageJudged, StageDecided}

// SubjectCanaryJudged is where the verifier announces one location's canary.
func SubjectCanaryJudged(location string) string { return "canary." + location + ".judged" }

// CanaryKey is where a stage of one location's canary is recorded in
// BucketCanary: "judged.lon1".
func CanaryKey(stage, location string) string { return stage + "." + location }

// CanaryTaskID is the id of the canary task of one location and slot:
// every scheduler replica of the location issues the same, and JetStream
// keeps one.
func CanaryTaskID(slot int64, location string) string {
	return "canary/" + strconv.FormatInt(slot, 10) + "/" + location
}

// ParseCanaryTaskID is CanaryTaskID read back; ok is false for anything
// else.
func ParseCanaryTaskID(id string) (slot int64, location string, ok bool) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 || parts[0] != "canary" || !ValidToken(parts[2]) {
		return 0, "", false
	}
	slot, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || slot <= 0 {
		return 0, "", false
	}
	return slot, parts[2], true
}

// CanaryStage is how far one location's canary got at one stage, in
// BucketCanary under CanaryKey.
//
// Written by the stage itself each interval: the prober's scheduler
// (scheduled), the prober that answered (probed), the verifier (judged),
// the notifier (decided). Read by the watchdog.
type CanaryStage struct {
	Slot int64     `json:"slot"` // the canary's slot: intervals since the Unix epoch
	At   time.Time `json:"at"`   // when the stage did its part
	// Since, on the scheduled stage, is the first slot this scheduler
	// issued: a canary before it was never issued, so none is missed.
	Since int64 `json:"since,omitempty"`
}

// CanaryJudged is the verifier's word that it judged one location's canary
// answer: the pipeline from the scheduler to the verifier worked for that
// slot. It pages nobody; the notifier records that it decided on it.
type CanaryJudged struct {
	Slot     int64     `json:"slot"`
	Location string    `json:"location"`
	Issued   time.Time `json:"issued"` // when the slot fell due
	Probed   time.Time `json:"probed"` // when the prober answered
	Judged   time.Time `json:"judged"`
}

func (*CanaryJudged) EventType() Type   { return TypeCanaryJudged }
func (c *CanaryJudged) Subject() string { return SubjectCanaryJudged(c.Location) }
func (c *CanaryJudged) Validate() error {
	if err := checkToken("location", c.Location); err != nil {
		return err
	}
	switch {
	case c.Slot <= 0:
		return fmt.Errorf("slot must be positive, got %d", c.Slot)
	case c.Issued.IsZero() || c.Probed.IsZero() || c.Judged.IsZero():
		return errors.New("missing issued, probed or judged")
	}
	return nil
}
