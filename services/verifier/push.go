package verifier

import (
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// pushResult is a push report as the judge takes results: one seen by the
// push service, at the time of the report or of the deadline missed. Its
// task is the report's own id, which no verification ever asked for.
func pushResult(id string, p *events.PushReport) *events.ProbeResult {
	return &events.ProbeResult{
		Server: p.Server, Location: events.PushLocation, Check: "push", Task: id,
		Purpose: events.PurposeScheduled, Started: p.At, OK: p.Outcome == events.PushOK, Reason: p.Reason,
	}
}

// pushPolicy is how a push server is judged: there is nothing to check
// again from elsewhere, since a report of failure is the job's own word
// and a deadline missed is its own confirmation; one failure makes it
// down, and one report of success brings it back. Flapping is judged as
// for any server.
func pushPolicy(p judge.Policy) judge.Policy {
	p.Ask, p.Quorum, p.RecoverAfter = 0, 0, 1
	return p
}
