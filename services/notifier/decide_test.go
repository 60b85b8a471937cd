package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// boxes is box states in the shape an incident's view keeps them: id,
// state, id, state, …
func boxes(kv ...any) map[string]events.BoxStatus {
	m := map[string]events.BoxStatus{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = events.BoxStatus{Box: kv[i].(string), State: kv[i+1].(events.BoxState)}
	}
	return m
}

// toBoxes sets the state of the boxes of an incident: id, state, …
func (st *incidentState) toBoxes(kv ...any) {
	st.BoxStates = boxes(kv...)
	st.Boxes = nil
	for i := 0; i < len(kv); i += 2 {
		st.Boxes = append(st.Boxes, kv[i].(string))
	}
}

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	p := pacing{GroupWait: 0, GroupWindow: time.Minute, UpdateEvery: 10 * time.Minute, RepeatEvery: 30 * time.Minute}
	waiting := p
	waiting.GroupWait = 10 * time.Second
	openedEv := events.New("i/opened", "verifier", t0, &events.IncidentOpened{Incident: "i", Opened: t0, Title: "x", Servers: []events.AffectedServer{{Server: "a", Box: "b", Since: t0}}})
	update := func(seq int64) events.Event {
		return events.New("i/updated", "verifier", t0, &events.IncidentUpdated{Incident: "i", Seq: seq, At: t0, Title: "x", Recovered: []string{"a"}})
	}
	resolvedEv := events.New("i/resolved", "verifier", t0, &events.IncidentResolved{Incident: "i", Opened: t0, Resolved: t0, Title: "x", Servers: []string{"a"}})
	sentAt := func(at time.Time, mod func(*incidentState)) incidentState {
		st := incidentState{View: incident.View{Incident: "i", Opened: t0, Seq: 3}, FirstSent: at, LastSent: at, Covered: 3, Paged: events.SeverityDegraded}
		if mod != nil {
			mod(&st)
		}
		return st
	}
	ack := &events.IncidentAcknowledged{Incident: "i", By: "Ann", Via: "sms", At: t0}

	tests := []struct {
		name  string
		st    incidentState
		ev    events.Event
		now   time.Time
		p     pacing
		next  *sending
		later time.Duration
	}{
		{"the first message goes at once", incidentState{View: incident.View{Seq: 2}}, openedEv, t0.Add(time.Second), p,
			&sending{Kind: kindOpened, At: t0.Add(time.Second), Seq: 2, Severity: events.SeverityDegraded}, 0},
		{"an outage from the start says so", incidentState{View: incident.View{Seq: 2, Boxes: []string{"mx"}, BoxStates: boxes("mx", events.BoxDown)}}, openedEv, t0, p,
			&sending{Kind: kindOpened, At: t0, Seq: 2, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"worse news pages at once, whatever the pacing", sentAt(t0, func(s *incidentState) { s.Seq = 4; s.toBoxes("mx", events.BoxDown) }), update(4), t0.Add(10 * time.Second), p,
			&sending{Kind: kindWorse, N: 1, At: t0.Add(10 * time.Second), Seq: 4, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"acknowledged or not", sentAt(t0, func(s *incidentState) { s.Seq = 4; s.Acked = ack; s.toBoxes("mx", events.BoxDown) }), update(4), t0.Add(10 * time.Second), p,
			&sending{Kind: kindWorse, N: 1, At: t0.Add(10 * time.Second), Seq: 4, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"even an update a digest told of", sentAt(t0, func(s *incidentState) { s.Covered = 4; s.Seq = 4; s.toBoxes("mx", events.BoxDown) }), update(4), t0.Add(10 * time.Minute), p,
			&sending{Kind: kindWorse, N: 1, At: t0.Add(10 * time.Minute), Seq: 4, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"another box down pages again", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown, s.Worse = 5, events.SeverityOutage, []string{"mx"}, 1
			s.toBoxes("mx", events.BoxDown, "web", events.BoxDown)
		}), update(5), t0.Add(20 * time.Second), p,
			&sending{Kind: kindWorse, N: 2, At: t0.Add(20 * time.Second), Seq: 5, Severity: events.SeverityOutage, Down: []string{"mx", "web"}}, 0},
		{"a rise in severity pages even within the window of the last page", sentAt(t0, func(s *incidentState) {
			s.Seq, s.PagedAt = 4, t0
			s.toBoxes("mx", events.BoxDown)
		}), update(4), t0.Add(10 * time.Second), p,
			&sending{Kind: kindWorse, N: 1, At: t0.Add(10 * time.Second), Seq: 4, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"box after box at the same severity: gathered until the window of the last page ends", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown, s.PagedAt = 5, events.SeverityOutage, []string{"mx"}, t0
			s.toBoxes("mx", events.BoxDown, "web", events.BoxDown)
		}), update(5), t0.Add(20 * time.Second), p, nil, 40 * time.Second},
		{"then paged, naming them", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown, s.PagedAt = 5, events.SeverityOutage, []string{"mx"}, t0
			s.toBoxes("mx", events.BoxDown, "web", events.BoxDown)
		}), update(5), t0.Add(time.Minute), p,
			&sending{Kind: kindWorse, N: 1, At: t0.Add(time.Minute), Seq: 5, Severity: events.SeverityOutage, Down: []string{"mx", "web"}}, 0},
		{"better news follows the digests' pace", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown = 5, events.SeverityOutage, []string{"mx"}
			s.toBoxes("mx", events.BoxDegraded)
		}), update(5), t0.Add(20 * time.Second), p, nil, 40 * time.Second},
		// Back to degraded and down again before any message said it was
		// back: what staff were last told is still true.
		{"a box down again before anyone heard it was back is no news", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown = 5, events.SeverityOutage, []string{"mx"}
			s.LastSeverity, s.LastDown = events.SeverityOutage, []string{"mx"}
			s.toBoxes("mx", events.BoxDown)
		}), update(5), t0.Add(20 * time.Second), p, nil, 40 * time.Second},
		// Staff last read that the box serves again: its going down again
		// is a rise on what they were told, and pages at once, though an
		// earlier page named the same box.
		{"a box down again after a message said it was back pages at once", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown, s.PagedAt, s.Worse = 5, events.SeverityOutage, []string{"mx"}, t0, 1
			s.LastSeverity, s.LastDown = events.SeverityDegraded, nil
			s.toBoxes("mx", events.BoxDown)
		}), update(5), t0.Add(20 * time.Second), p,
			&sending{Kind: kindWorse, N: 2, At: t0.Add(20 * time.Second), Seq: 5, Severity: events.SeverityOutage, Down: []string{"mx"}}, 0},
		{"unless every server down is flapping: it stops paging until it settles", sentAt(t0, func(s *incidentState) {
			s.Seq, s.Paged, s.PagedDown, s.PagedAt = 5, events.SeverityOutage, []string{"mx"}, t0
			s.LastSeverity, s.LastDown = events.SeverityDegraded, nil
			s.Down, s.Flapping = []string{"mx1"}, []string{"mx1"}
			s.toBoxes("mx", events.BoxDown)
		}), update(5), t0.Add(20 * time.Second), p, nil, 40 * time.Second},
		{"a warning is repeated until fixed, acknowledged or not", sentAt(t0, func(s *incidentState) { s.Warning, s.Acked = true, ack }), openedEv, t0.Add(24 * time.Hour),
			pacing{GroupWindow: time.Minute, RepeatEvery: 24 * time.Hour}, &sending{Kind: kindReminder, N: 1, At: t0.Add(24 * time.Hour), Seq: 3}, 0},
		{"a warning never pages worse", sentAt(t0, func(s *incidentState) { s.Seq, s.Warning = 4, true }), update(4), t0.Add(10 * time.Second), p, nil, 50 * time.Second},
		{"or once the group wait is over", incidentState{}, openedEv, t0.Add(3 * time.Second), waiting, nil, 7 * time.Second},
		{"an update before the first message is in it", incidentState{View: incident.View{Seq: 1}}, update(1), t0, p, nil, 0},
		{"an update the last message told of", sentAt(t0, nil), update(3), t0.Add(time.Hour), p, nil, 0},
		{"updates after the first are gathered", sentAt(t0, nil), update(4), t0.Add(10 * time.Second), p, nil, 50 * time.Second},
		{"the gathered updates go together", sentAt(t0, func(s *incidentState) { s.Seq = 9 }), update(4), t0.Add(time.Minute), p,
			&sending{Kind: kindDigest, N: 1, At: t0.Add(time.Minute), Seq: 9}, 0},
		{"then at most every update_every", sentAt(t0, func(s *incidentState) { s.Digests = 1 }), update(4), t0.Add(2 * time.Minute), p, nil, 8 * time.Minute},
		{"the repeat waits", sentAt(t0, nil), openedEv, t0.Add(20 * time.Minute), p, nil, 10 * time.Minute},
		{"an unacknowledged incident is repeated", sentAt(t0, nil), openedEv, t0.Add(30 * time.Minute), p,
			&sending{Kind: kindReminder, N: 1, At: t0.Add(30 * time.Minute), Seq: 3}, 0},
		{"and again", sentAt(t0, func(s *incidentState) { s.Reminders = 1 }), openedEv, t0.Add(31 * time.Minute), p, nil, 29 * time.Minute},
		{"an acknowledged one is not", sentAt(t0, func(s *incidentState) { s.Acked = ack }), openedEv, t0.Add(time.Hour), p, nil, 0},
		{"nor without repeat_every", sentAt(t0, nil), openedEv, t0.Add(time.Hour), pacing{GroupWindow: time.Minute}, nil, 0},
		{"the resolution goes at once", sentAt(t0, nil), resolvedEv, t0.Add(time.Minute), p,
			&sending{Kind: kindResolved, At: t0.Add(time.Minute), Seq: 3}, 0},
		{"once", sentAt(t0, func(s *incidentState) { s.ResolvedSent = true }), resolvedEv, t0.Add(time.Minute), p, nil, 0},
		{"a late opening after the resolution is not sent", incidentState{View: incident.View{Resolved: &events.IncidentResolved{}}}, openedEv, t0, p, nil, 0},
		{"an update after the resolution is not either", sentAt(t0, func(s *incidentState) { s.Resolved = &events.IncidentResolved{} }), update(5), t0.Add(time.Hour), p, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			next, later := decide(&st, tt.ev, tt.now, tt.p)
			if d := cmp.Diff(tt.next, next); d != "" {
				t.Errorf("next (-want +got):\n%s", d)
			}
			if later != tt.later {
				t.Errorf("later %s, want %s", later, tt.later)
			}
		})
	}
}

// TestFlappingDigest: the update that marks a server flapping tells staff,
// by email and SMS, that nobody is paged about it until it settles.
func TestFlappingDigest(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}, {id: mx2, check: "tcp://mx2.internal:25"}]}]
staff: [{name: Alice, email: alice@example.net}]
providers: {smtp: {host: 127.0.0.1, port: 2525, from: alerts@example.net, tls: none}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var st incidentState
	st.Merge(events.New("i/opened", "verifier", t0, &events.IncidentOpened{Incident: "20261121-abcdef", Opened: t0, Title: "mx1 (Incoming mail) is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: t0, BoxState: events.BoxDegraded, StillUp: []string{"mx2"}}}}), 10)
	st.Merge(events.New("i/updated/1", "verifier", t0, &events.IncidentUpdated{Incident: "20261121-abcdef", Seq: 1, At: t0.Add(time.Minute), Opened: t0,
		Title: "mx1 (Incoming mail) is down", Down: []string{"mx1"}, Flapping: []string{"mx1"}}), 10)
	m := compose(cfg, &st, sending{Kind: kindDigest, N: 1}, t0.Add(2*time.Minute))
	if !strings.Contains(m.SMS, "mx1 flapping: no more pages until it settles") {
		t.Errorf("SMS %q does not say mx1 is flapping", m.SMS)
	}
	if text := m.body.text(); !strings.Contains(text, "Flapping:") || !strings.Contains(text, "nobody is paged about it again") {
		t.Errorf("email does not say mx1 is flapping:\n%s", text)
	}
}

// TestRiseAfterBetterNews: outage, back to degraded, outage again. The
// digest that says the box serves again is what staff last read, so the
// box going down again pages at once; had no message said it was back,
// the outage they were paged about would still be true, and nothing
// pages.
func TestRiseAfterBetterNews(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	p := pacing{GroupWindow: time.Minute, UpdateEvery: 10 * time.Minute}
	update := func(seq int64, state events.BoxState) events.Event {
		return events.New("i/updated", "verifier", t0, &events.IncidentUpdated{Incident: "i", Seq: seq, At: t0, Title: "x",
			Boxes: []events.BoxStatus{{Box: "mx", State: state}}})
	}
	for _, digest := range []bool{true, false} {
		st := incidentState{View: incident.View{Incident: "i", Opened: t0}}
		st.merge(events.New("i/opened", "verifier", t0, &events.IncidentOpened{Incident: "i", Opened: t0, Title: "x",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: t0, BoxState: events.BoxDown}}}))
		s, _ := decide(&st, events.Event{Data: &events.IncidentOpened{Incident: "i", Opened: t0}}, t0, p)
		st.sent(*s)
		back := update(1, events.BoxDegraded)
		st.merge(back)
		now := t0.Add(2 * time.Minute)
		if s, _ = decide(&st, back, now, p); s == nil || s.Kind != kindDigest {
			t.Fatalf("better news: %+v, want a digest", s)
		}
		if digest {
			st.sent(*s)
		}
		again := update(2, events.BoxDown)
		st.merge(again)
		s, _ = decide(&st, again, now.Add(time.Second), p)
		switch {
		case digest && (s == nil || s.Kind != kindWorse):
			t.Errorf("down again after a digest said it was back: %+v, want a page", s)
		case !digest && s != nil && s.Kind == kindWorse:
			t.Errorf("down again before anyone read it was back: paged %+v", s)
		}
	}
}
