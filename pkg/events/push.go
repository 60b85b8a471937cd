package events

import (
	"errors"
	"fmt"
	"time"
)

// TypePushReport is what the push service heard, or did not hear, from a
// job that reports in.
const TypePushReport Type = "push.report"

// SubjectPushReports is every push report: a server's results as from
// the location "push", which no prober may have, so that the verifier
// reads results and reports with one filter (a consumer with several is
// far slower once the stream holds thousands of subjects). Only the push
// service may publish here, and the verifier believes a report only for
// servers the config says report in.
const SubjectPushReports = "probe.result.*." + PushLocation

// SubjectPushReport is where one push server's reports go.
func SubjectPushReport(server string) string { return SubjectProbeResult(server, PushLocation) }

// BucketPush holds the push service's record of each push server: when it
// last reported and when it must report again, so that a restarted push
// service keeps every deadline. Keyed by server id.
const BucketPush = "tocsin-push"

// PushLocation is the location a push server's outcomes are said to be
// seen from: the push service, not a prober.
const PushLocation = "push"

// The outcomes of a push report.
const (
	PushOK     = "ok"     // the job reported success
	PushFailed = "failed" // the job ran and reported failure
	PushMissed = "missed" // no report came before the deadline
)

// MaxPushMessage bounds what a job's failure report may say: it becomes
// the reason of the server's failure, read by people.
const MaxPushMessage = MaxReason

// PushReport is one outcome of a server that reports in rather than being
// checked: a cron job or a backup that calls the push endpoint when it
// has run, or the push service's finding that it did not call in time.
type PushReport struct {
	Server  string    `json:"server"`
	Outcome string    `json:"outcome"`
	At      time.Time `json:"at"` // when the report came, or the deadline that passed
	// Reason, for a failure, is in words for a person: the job's own
	// message, or how long nothing came.
	Reason string `json:"reason,omitempty"`
}

func (*PushReport) EventType() Type   { return TypePushReport }
func (r *PushReport) Subject() string { return SubjectPushReport(r.Server) }
func (r *PushReport) Validate() error {
	if err := checkToken("server", r.Server); err != nil {
		return err
	}
	switch {
	case r.Outcome != PushOK && r.Outcome != PushFailed && r.Outcome != PushMissed:
		return fmt.Errorf("unknown outcome %q", r.Outcome)
	case r.At.IsZero():
		return errors.New("missing at")
	case r.Outcome != PushOK && r.Reason == "":
		return errors.New("a failed or missed report needs a reason")
	case len(r.Reason) > MaxReason:
		return fmt.Errorf("reason longer than %d bytes", MaxReason)
	}
	return nil
}
