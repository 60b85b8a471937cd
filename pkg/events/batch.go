package events

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// TypeProbeResultBatch is many successful checks of one location in one
// message. A message costs the bus and every consumer far more than the
// few dozen bytes a success says, and nearly every check succeeds: a
// prober gathers its successes for a moment and sends them together.
// Failures, unanswered checks and the answers to re-checks still travel
// one to a message, at once.
const TypeProbeResultBatch Type = "probe.result_batch"

// batchToken is the second token of a batch's subject, where a result's
// subject names its server: a server id cannot start with an underscore
// (ValidToken), so no server's results are ever mistaken for batches.
const batchToken = "_batch"

// SubjectProbeResultBatch is where one location's batches go: under
// probe.result.*.<location>, so the permission that holds a prober to its
// own location's results holds its batches too, and a consumer of
// probe.result.> gets them with the results.
func SubjectProbeResultBatch(location string) string {
	return "probe.result." + batchToken + "." + location
}

// IsResultBatch reports whether subject is a location's batch subject,
// without decoding anything.
func IsResultBatch(subject string) bool {
	return strings.HasPrefix(subject, "probe.result."+batchToken+".")
}

// Bounds of a batch. MaxBatchBytes leaves room under the results stream's
// 64 KiB message limit for the envelope and the headers.
const (
	MaxBatchResults = 500
	MaxBatchBytes   = 60 << 10
)

// ProbeResultBatch holds successful scheduled checks of one location. Its
// items are compact (short keys, times in microseconds after Start, empty
// fields left out): they are nearly all that results cost on the wire.
// Take them apart with Results; each is then a ProbeResult as if it had
// come on its own, with the batch's location.
type ProbeResultBatch struct {
	Location string `json:"location"`
	// Start is when the earliest check of the batch began.
	Start time.Time     `json:"start"`
	Items []BatchedItem `json:"results"`
}

// BatchedItem is one successful scheduled check in a batch.
type BatchedItem struct {
	Server  string `json:"s"`
	Task    string `json:"t"`
	Check   string `json:"c,omitempty"`
	At      int64  `json:"at"` // µs after the batch's Start that the check began
	Latency int64  `json:"l"`  // µs the check took
	Warning string `json:"w,omitempty"`
}

func (*ProbeResultBatch) EventType() Type   { return TypeProbeResultBatch }
func (b *ProbeResultBatch) Subject() string { return SubjectProbeResultBatch(b.Location) }
func (b *ProbeResultBatch) Validate() error {
	if err := checkToken("location", b.Location); err != nil {
		return err
	}
	switch {
	case b.Start.IsZero():
		return errors.New("missing start")
	case len(b.Items) == 0:
		return errors.New("no results")
	case len(b.Items) > MaxBatchResults:
		return fmt.Errorf("%d results, more than the %d a batch may hold", len(b.Items), MaxBatchResults)
	}
	size := 0
	for i := range b.Items {
		it := &b.Items[i]
		switch {
		case it.At < 0 || it.At > int64(maxBatchSpan/time.Microsecond):
			return fmt.Errorf("result %d: at %dµs is outside the batch's %s", i, it.At, maxBatchSpan)
		case it.Latency < 0 || it.Latency > int64(maxBatchSpan/time.Microsecond):
			return fmt.Errorf("result %d: latency %dµs out of bounds", i, it.Latency)
		case len(it.Task) > maxTask || !printable(it.Task):
			// "<task>/result" is the id of the result taken apart.
			return fmt.Errorf("result %d: task longer than %d characters, or with spaces or control characters", i, maxTask)
		}
		if r := b.result(i); r.Validate() != nil {
			err := r.Validate()
			return fmt.Errorf("result %d: %w", i, err)
		}
		size += it.Size()
	}
	if size > MaxBatchBytes {
		return fmt.Errorf("results of %d bytes, more than the %d a batch may hold", size, MaxBatchBytes)
	}
	return nil
}

// maxBatchSpan bounds the times within a batch: its checks began within
// moments of each other, and none lasts an hour.
const maxBatchSpan = time.Hour

// maxTask bounds an item's task id, so that its result's id is valid.
const maxTask = 190

// Item is a successful scheduled check as a batch holds it, or false if
// r is not one: a failure, an unanswered check, a re-check's answer.
// start is the batch's Start, at or before r.Started.
func Item(r *ProbeResult, start time.Time) (BatchedItem, bool) {
	if !r.OK || r.Unanswered || r.Purpose != PurposeScheduled || r.Reason != "" || r.Correlation != "" {
		return BatchedItem{}, false
	}
	return BatchedItem{
		Server: r.Server, Task: r.Task, Check: r.Check,
		At:      r.Started.Sub(start).Microseconds(),
		Latency: int64(r.LatencyMS*1000 + 0.5),
		Warning: r.Warning,
	}, true
}

// Size bounds the bytes an item takes in a batch's JSON: every byte of
// its text as if escaped (6), the rest as long as it can be. The sum over
// a batch's items is what MaxBatchBytes bounds, so that a batch built to
// it fits the stream whatever its text says.
func (it *BatchedItem) Size() int {
	const fixed = len(`{"s":"","t":"","c":"","at":,"l":,"w":""},`) + 2*20
	return fixed + escapedLen(it.Server) + escapedLen(it.Task) + escapedLen(it.Check) + escapedLen(it.Warning)
}

// escapedLen is at least what encoding/json writes for s, without quotes.
func escapedLen(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c >= utf8.RuneSelf, c == '"', c == '\\', c == '<', c == '>', c == '&':
			n += 6
		default:
			n++
		}
	}
	return n
}

// result is the i-th item as the ProbeResult it was.
func (b *ProbeResultBatch) result(i int) ProbeResult {
	it := &b.Items[i]
	return ProbeResult{
		Server: it.Server, Location: b.Location, Check: it.Check, Task: it.Task, Purpose: PurposeScheduled,
		Started:   b.Start.Add(time.Duration(it.At) * time.Microsecond),
		LatencyMS: float64(it.Latency) / 1000, OK: true, Warning: it.Warning,
	}
}

// Results takes apart a batch event as Decode returns it (validated):
// each item is the probe.result event the prober would have published on
// its own, with the same id ("<task>/result"), time and source, on its
// server's subject.
func Results(ev Event) ([]Event, error) {
	b, ok := ev.Data.(*ProbeResultBatch)
	if !ok {
		return nil, fmt.Errorf("a %s event where a %s was expected", ev.Type, TypeProbeResultBatch)
	}
	out := make([]Event, len(b.Items))
	rs := make([]ProbeResult, len(b.Items)) // one allocation for them all
	for i := range b.Items {
		rs[i] = b.result(i)
		r := &rs[i]
		out[i] = Event{
			ID: r.Task + "/result", Type: TypeProbeResult, Source: ev.Source, Data: r,
			Time: r.Started.Add(time.Duration(b.Items[i].Latency) * time.Microsecond),
		}
	}
	return out, nil
}

// DecodeResults decodes a message of the results stream into the results
// it holds: one, or a batch's taken apart. For whoever reads the stream
// rather than consuming it through the bus (a test, a benchmark, a tool).
func DecodeResults(subject string, data []byte) ([]Event, error) {
	ev, err := Decode(subject, data)
	if err != nil {
		return nil, err
	}
	if ev.Type == TypeProbeResultBatch {
		return Results(ev)
	}
	return []Event{ev}, nil
}
