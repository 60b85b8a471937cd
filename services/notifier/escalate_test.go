package notifier

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// playEscalation plays a script of events against decide from t0, as
// handle would, with the default policies and Alice on call, Bob
// secondary (but where the roster says "nosecondary"), Carol the third
// of the team, without a phone. Each clause is "t=<since t0>", then the
// event ("open", "open:degraded", "timer": the held opening event again,
// "worse": the box goes down, "ack:<name>"), then what decide says,
// which the player writes: each message as "<step>", then whom its rungs
// page ("alice/sms", …), "gap:<word>" for a rung that reaches nobody
// (settled by a message to nobody), "notice" for an ACK notice and
// "skip:<words>" for the rungs it names as skipped; last "later:<wait>"
// or "done".
func playEscalation(t *testing.T, roster, script string) string {
	t.Helper()
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	rung := func(after time.Duration, who string, by ...string) policy.Rung {
		return policy.Rung{After: after, Who: []string{who}, By: by}
	}
	def := policy.Policy{
		rung(0, "oncall", "sms"), rung(5*time.Minute, "oncall", "voice"),
		rung(10*time.Minute, "secondary", "sms", "voice"), rung(20*time.Minute, "team", "sms", "email"),
	}
	people := map[string]policy.Person{"alice": {Name: "alice", Phone: true, Email: true}, "bob": {Name: "bob", Phone: true, Email: true}, "carol": {Name: "carol", Email: true}}
	p := pacing{GroupWindow: time.Minute, UpdateEvery: 10 * time.Minute, RepeatEvery: 30 * time.Minute,
		Policies: policy.Policies{events.SeverityDegraded: def, events.SeverityOutage: def},
		Staff: policy.ResolverFunc(func(who string, _ time.Time) []policy.Person {
			switch who {
			case "oncall":
				return []policy.Person{people["alice"]}
			case "secondary":
				if roster == "nosecondary" {
					return nil
				}
				return []policy.Person{people["bob"]}
			case "team":
				return []policy.Person{people["alice"], people["bob"], people["carol"]}
			}
			return nil
		})}
	var st incidentState
	var opening events.Event
	var out []string
	for _, clause := range strings.Split(script, ";") {
		f := strings.Fields(clause)
		d, err := time.ParseDuration(strings.TrimPrefix(f[0], "t="))
		if err != nil {
			t.Fatal(err)
		}
		now := t0.Add(d)
		words := f[:2]
		var ev events.Event
		switch what := f[1]; {
		case strings.HasPrefix(what, "open"):
			state := events.BoxDown
			if what == "open:degraded" {
				state = events.BoxDegraded
			}
			opening = events.New("i/opened", "verifier", now, &events.IncidentOpened{Incident: "i", Opened: now, Title: "mx1 is down",
				Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: now, BoxState: state}}})
			ev = opening
		case what == "timer":
			ev = opening
		case what == "worse":
			ev = events.New("i/updated/1", "verifier", now, &events.IncidentUpdated{Incident: "i", Seq: 1, At: now, Title: "mx is down",
				Boxes: []events.BoxStatus{{Box: "mx", State: events.BoxDown}}, Down: []string{"mx1", "mx2"}})
		case strings.HasPrefix(what, "ack:"):
			ev = events.New("i/acknowledged", "notifier", now, &events.IncidentAcknowledged{Incident: "i", By: strings.TrimPrefix(what, "ack:"), Via: "sms", At: now})
		}
		st.merge(ev)
		var later time.Duration
		for range maxMessages {
			var s *sending
			s, later = decide(&st, ev, now, p)
			if s == nil {
				break
			}
			step := s.Kind
			if s.N > 0 {
				step = fmt.Sprintf("%s-%d", s.Kind, s.N)
			}
			words = append(words, step)
			if s.Kind == kindAcked {
				words = append(words, "notice")
			}
			for _, k := range s.Steps {
				if k.Gap() {
					words = append(words, "gap:"+strings.Join(k.Nobody, "+"))
				}
				for _, pg := range k.Pages {
					words = append(words, pg.Person+"/"+strings.Join(pg.By, "+"))
				}
			}
			if sk := skips(s.Steps); sk != "" {
				words = append(words, "skip:"+strings.ReplaceAll(strings.TrimSpace(sk), " ", "_"))
			}
			st.sent(*s)
		}
		if later > 0 {
			words = append(words, "later:"+later.String())
		} else {
			words = append(words, "done")
		}
		out = append(out, strings.Join(words, " "))
	}
	return strings.Join(out, "; ")
}

// TestEscalate: the rungs of an unacknowledged incident's policy, each
// once at its time, as decide sends them; what an acknowledgement and
// worse news do to them.
func TestEscalate(t *testing.T) {
	tests := []struct{ name, roster, script string }{
		{"each rung fires at its time, once", "",
			"t=0s open opened alice/sms later:5m0s; t=4m59s timer later:1s; t=5m0s timer escalation-1 alice/voice later:5m0s; " +
				"t=5m0s timer later:5m0s; t=10m0s timer escalation-2 bob/sms+voice later:10m0s; " +
				"t=20m0s timer escalation-3 alice/sms+email bob/sms+email carol/email done; t=1h0m0s timer done"},
		{"rungs missed while nobody looked go one message each", "",
			"t=0s open opened alice/sms later:5m0s; t=25m0s timer escalation-1 alice/voice escalation-2 bob/sms+voice " +
				"escalation-3 alice/sms+email bob/sms+email carol/email done"},
		{"an acknowledgement stops the rest, and those paged hear of it", "",
			"t=0s open opened alice/sms later:5m0s; t=5m0s timer escalation-1 alice/voice later:5m0s; " +
				"t=7m0s ack:alice acked-1 notice done; t=10m0s timer done; t=20m0s timer done"},
		{"once", "",
			"t=0s open opened alice/sms later:5m0s; t=1m0s ack:bob acked-1 notice done; t=2m0s ack:bob done"},
		{"a rung that reaches nobody is named by the next", "nosecondary",
			"t=0s open opened alice/sms later:5m0s; t=5m0s timer escalation-1 alice/voice later:5m0s; t=10m0s timer escalation-2 gap:secondary later:10m0s; " +
				"t=20m0s timer escalation-3 alice/sms+email bob/sms+email carol/email skip:Nobody_was_on_call_as_secondary. done"},
		{"worse news hands over to the outage policy, on its clock", "",
			"t=0s open:degraded opened alice/sms later:5m0s; t=11m0s worse worse-1 alice/voice bob/sms+voice done; " +
				"t=11m0s timer later:9m0s; t=20m0s timer escalation-4 alice/email bob/sms+email carol/email done"},
		{"after an acknowledgement, afresh, the update its timer", "",
			"t=0s open:degraded opened alice/sms later:5m0s; t=1m0s ack:alice acked-1 notice done; " +
				"t=2m0s worse worse-1 alice/sms later:5m0s; t=7m0s worse escalation-2 alice/voice later:5m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := playEscalation(t, tt.roster, tt.script); got != tt.script {
				t.Errorf("\ngot  %s\nwant %s", got, tt.script)
			}
		})
	}
}

// TestAckAudience: an acknowledgement is told once to everyone paged but
// the acker, by SMS to whom a page rang, by email to the others.
func TestAckAudience(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	cfg := severityConfig(t, "")
	n := &Notifier{cfg: cfg, chans: []Channel{smsChannel{}, emailChannel{}, voiceChannel{}}}
	st := incidentState{View: incident.View{Incident: "i", Opened: t0}}
	st.Policy = policy.Start(events.SeverityOutage, t0)
	st.Policy.Fired = []policy.Step{
		{Rung: 0, Pages: []policy.Page{{Person: "Alice", By: []string{"sms"}}}},
		{Rung: 2, Pages: []policy.Page{{Person: "Bob", By: []string{"voice"}}}},
	}
	for _, name := range []string{"Alice", "Bob", "Carol"} {
		p, _ := cfg.StaffNamed(name)
		n.tell(&st, []recipient{{Staff: p, Channels: []string{"email"}}})
	}
	s := sending{Kind: kindAcked, N: 1, Ack: &policy.Ack{By: "Alice", At: t0.Add(14 * time.Minute)}}
	var got []string
	for _, r := range n.audience(&st, s) {
		got = append(got, r.Staff.Name+":"+strings.Join(r.Channels, "+"))
	}
	if s, want := strings.Join(got, " "), "Bob:sms Carol:email"; s != want {
		t.Errorf("got %q, want %q", s, want)
	}
	m := compose(cfg, &st, s, t0.Add(14*time.Minute))
	if want := "ACK by Alice at 03:14"; !strings.HasPrefix(m.SMS, want) || !strings.Contains(m.Subject, want) {
		t.Errorf("SMS %q, subject %q: want %q", m.SMS, m.Subject, want)
	}
	// Worse news pages whoever acknowledged: the notice promises no
	// silence it cannot keep.
	text := m.body.text()
	if !strings.Contains(text, "No later rung will page anyone; worse news still will.") || strings.Contains(text, "Nobody will be paged") {
		t.Errorf("the notice says what the acknowledgement stops wrongly:\n%s", text)
	}
}
