package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// seen is an event and when JetStream stored it: the moment it was
// published, whatever the lag of the bench's own reading.
type seen struct {
	at time.Time
	ev events.Event
}

// watch follows, on a connection of its own, the target's probe results
// and state changes and every incident event, so that each outage's time
// to SMS can be split into its stages. It only reads.
type watch struct {
	mu  sync.Mutex
	all []seen
	bad int // messages that did not decode
	cc  []jetstream.ConsumeContext
}

func startWatch(ctx context.Context, b *bus.Bus, server string) (*watch, error) {
	w := &watch{}
	for stream, subjects := range map[string][]string{
		// Successes come in each location's batches.
		events.StreamResults: {events.SubjectProbeResultsOf(server), events.SubjectProbeResultBatch("*")},
		events.StreamEvents:  {events.SubjectServerChanged(server), events.SubjectIncidents},
	} {
		c, err := b.JS.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("watch %s: %w", stream, err)
		}
		cc, err := c.Consume(func(m jetstream.Msg) {
			at := time.Now()
			if md, err := m.Metadata(); err == nil {
				at = md.Timestamp
			}
			evs, err := events.DecodeResults(m.Subject(), m.Data())
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				w.bad++
				return
			}
			for _, ev := range evs {
				if r, ok := ev.Data.(*events.ProbeResult); ok && r.Server != server {
					continue // another server's, in a batch
				}
				w.all = append(w.all, seen{at, ev})
			}
		})
		if err != nil {
			w.stop()
			return nil, fmt.Errorf("watch %s: %w", stream, err)
		}
		w.cc = append(w.cc, cc)
	}
	return w, nil
}

func (w *watch) stop() {
	for _, cc := range w.cc {
		cc.Stop()
	}
}

// since returns the events stored at or after t, in the order stored.
func (w *watch) since(t time.Time) []seen {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seen
	for _, s := range w.all {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b seen) int { return a.at.Compare(b.at) })
	return out
}

// seenTold reports whether an incident was seen saying, since t, what
// the SMS timed says: an incident opened, or an outage within one.
func (w *watch) seenTold(t time.Time) bool {
	for _, s := range w.since(t) {
		if tells(s.ev) {
			return true
		}
	}
	return false
}

// tells reports whether an incident event says what an outage's timed SMS
// says: an incident opened, or one's box now down.
func tells(ev events.Event) bool {
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		return true
	case *events.IncidentUpdated:
		return d.Severity == events.SeverityOutage
	}
	return false
}

// opened counts the incidents seen opening.
func (w *watch) opened() int {
	n := 0
	for _, s := range w.since(time.Time{}) {
		if _, ok := s.ev.Data.(*events.IncidentOpened); ok {
			n++
		}
	}
	return n
}

// state is the target's state as last seen, "" before any change.
func (w *watch) state() events.ServerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.all) - 1; i >= 0; i-- {
		if c, ok := w.all[i].ev.Data.(*events.ServerStateChanged); ok {
			return c.To
		}
	}
	return ""
}

// stages splits one outage, from the failure at start to the SMS at sms,
// into what each part of the pipeline took, from the events seen between.
// The stages add up to the whole: each begins where the last ended.
type stages struct {
	wait     time.Duration // until the first scheduled check to fail began
	check    time.Duration // that check, until it gave up
	judged   time.Duration // its result published and judged: the server suspect
	confirm  time.Duration // re-checks from other locations: the incident opened
	notify   time.Duration // the incident to the SMS accepted by Twilio
	from     string        // the location whose scheduled check failed first
	rechecks []string      // where the re-checks ran, and what they took
	complete bool          // every stage was seen
}

func (w *watch) stages(start, sms time.Time) stages {
	var st stages
	var failed *events.ProbeResult
	var suspect, opened time.Time
	for _, s := range w.since(start) {
		if s.at.After(sms) {
			continue
		}
		switch d := s.ev.Data.(type) {
		case *events.ProbeResult:
			switch {
			case failed == nil && !d.OK && d.Purpose == events.PurposeScheduled:
				failed = d
			case d.Purpose == events.PurposeRecheck && failed != nil && opened.IsZero():
				st.rechecks = append(st.rechecks, fmt.Sprintf("%s %s", d.Location, ms(time.Duration(d.LatencyMS*float64(time.Millisecond)))))
			}
		case *events.ServerStateChanged:
			if d.To == events.StateSuspect && suspect.IsZero() {
				suspect = s.at
			}
		case *events.IncidentOpened, *events.IncidentUpdated:
			// The verifier announces the incident (or the box down in
			// it) before the server's change to down: the notifier may
			// page before the change.
			if opened.IsZero() && tells(s.ev) {
				opened = s.at
			}
		}
	}
	if failed == nil || suspect.IsZero() || opened.IsZero() {
		return st
	}
	checked := failed.Started.Add(time.Duration(failed.LatencyMS * float64(time.Millisecond)))
	st.wait = failed.Started.Sub(start)
	st.check = checked.Sub(failed.Started)
	st.judged = suspect.Sub(checked)
	st.confirm = opened.Sub(suspect)
	st.notify = sms.Sub(opened)
	st.from = failed.Location
	st.complete = true
	return st
}

// lastScheduled is when the newest scheduled check of the target started;
// zero before any.
func (w *watch) lastScheduled() time.Time {
	var last time.Time
	for _, s := range w.since(time.Time{}) {
		if r, ok := s.ev.Data.(*events.ProbeResult); ok && r.Purpose == events.PurposeScheduled && r.Started.After(last) {
			last = r.Started
		}
	}
	return last
}
