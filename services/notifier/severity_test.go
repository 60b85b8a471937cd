package notifier

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// severityConfig: Alice on call, Bob routed; degraded incidents by email
// only, as a team may choose.
func severityConfig(t *testing.T, route string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(`
site: {name: Example Hosting}
locations: [lon1]
boxes:
  - {id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}, {id: mx2, check: "tcp://mx2.internal:25"}]}
  - {id: web, name: Websites, servers: [{id: web1, check: "tcp://web1.internal:80"}]}
staff:
  - {name: Alice, email: alice@example.net, phone: "+447700900001"}
  - {name: Bob, email: bob@example.net, phone: "+447700900002"}
  - {name: Carol, email: carol@example.net, phone: "+447700900003", boxes: [web]}
oncall: {rotation: [Alice], handover: 2026-01-05T09:00:00Z}
providers:
  smtp: {host: 127.0.0.1, port: 2525, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN}
notify: {`+route+`}
`), func(k string) (string, bool) { return "x1", true })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestWhoHearsWhat: who each message reaches, and how, by severity.
func TestWhoHearsWhat(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	ack := &events.IncidentAcknowledged{Incident: "i", By: "Bob", Via: "sms", At: t0}
	view := func(state events.BoxState, mod func(*incidentState)) incidentState {
		st := incidentState{View: incident.View{Incident: "i", Opened: t0, Boxes: []string{"mx"},
			BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: state}}}}
		if mod != nil {
			mod(&st)
		}
		return st
	}
	tests := []struct {
		name  string
		route string
		st    incidentState
		s     sending
		want  string
	}{
		{"degraded: the person on call by SMS and email, the others by email", "", view(events.BoxDegraded, nil),
			sending{Kind: kindOpened, Severity: events.SeverityDegraded}, "Alice:sms+email Bob:email"},
		{"a team may route degraded to email only", "severity: {degraded: {oncall: [email]}}", view(events.BoxDegraded, nil),
			sending{Kind: kindOpened, Severity: events.SeverityDegraded}, "Alice:email Bob:email"},
		{"an outage pages whatever degraded does", "severity: {degraded: {oncall: [email]}}", view(events.BoxDown, nil),
			sending{Kind: kindOpened, Severity: events.SeverityOutage}, "Alice:sms+email Bob:email"},
		{"worse news reaches whoever acknowledged, by the on-call's channels", "", view(events.BoxDown, func(s *incidentState) { s.Acked = ack }),
			sending{Kind: kindWorse, N: 1, Severity: events.SeverityOutage}, "Alice:sms+email Bob:sms+email"},
		{"a warning: email only, never an SMS", "", view(events.BoxOperational, func(s *incidentState) { s.Warning = true }),
			sending{Kind: kindOpened, Severity: events.SeverityWarning}, "Alice:email Bob:email"},
		{"a warning's daily reminder: everyone routed", "", view(events.BoxOperational, func(s *incidentState) { s.Warning = true }),
			sending{Kind: kindReminder, N: 1}, "Alice:email Bob:email"},
		{"a failure's reminder: the person on call", "", view(events.BoxDegraded, nil),
			sending{Kind: kindReminder, N: 1}, "Alice:sms+email"},
		{"a flapping server's incident: email only, even an outage", "", view(events.BoxDown, func(s *incidentState) { s.OpenedFlapping = true }),
			sending{Kind: kindOpened, Severity: events.SeverityOutage}, "Alice:email Bob:email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Notifier{cfg: severityConfig(t, tt.route), chans: []Channel{smsChannel{}, emailChannel{}}}
			st := tt.st
			var got []string
			for _, r := range n.audience(&st, tt.s) {
				got = append(got, r.Staff.Name+":"+strings.Join(r.Channels, "+"))
			}
			if s := strings.Join(got, " "); s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}
}

// TestWhoIsPagedByThePolicy: who the opening message of an incident
// reaches, and how, once the escalation policy the config makes has added
// its first rung to the routing. A team that routes degraded incidents to
// email is not texted about one by a policy it never wrote.
func TestWhoIsPagedByThePolicy(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	opened := events.New("i/opened", "verifier", t0, &events.IncidentOpened{Incident: "i", Opened: t0, Title: "mx1 is down",
		Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Since: t0}}})
	tests := []struct {
		name  string
		route string
		box   events.BoxState
		want  string
	}{
		{"degraded, routed as by default: the policy texts the person on call", "", events.BoxDegraded, "Alice:sms+email Bob:email"},
		{"degraded, routed to email: nobody is texted", "severity: {degraded: {oncall: [email], others: [email]}}", events.BoxDegraded, "Alice:email Bob:email"},
		{"an outage still pages", "severity: {degraded: {oncall: [email], others: [email]}}", events.BoxDown, "Alice:sms+email Bob:email"},
		{"a degraded policy written out is followed as written", "severity: {degraded: {oncall: [email]}}, policies: {degraded: [{after: 0s, who: [oncall], by: [sms]}]}",
			events.BoxDegraded, "Alice:email+sms Bob:email"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := severityConfig(t, tt.route)
			n := &Notifier{cfg: cfg, chans: []Channel{smsChannel{}, emailChannel{}}}
			p := pacing{GroupWindow: time.Minute, Policies: n.policies(cfg), Staff: policy.Staff(cfg)}
			st := incidentState{View: incident.View{Incident: "i", Opened: t0, Boxes: []string{"mx"},
				BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: tt.box}}}}
			s, _ := decide(&st, opened, t0, p)
			if s == nil {
				t.Fatal("no opening message")
			}
			var got []string
			for _, r := range n.audience(&st, *s) {
				got = append(got, r.Staff.Name+":"+strings.Join(r.Channels, "+"))
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

// TestWords: every message says how bad it is, in words that match what
// happened.
func TestWords(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	cfg := severityConfig(t, "")
	base := func(mod func(*incidentState)) *incidentState {
		st := &incidentState{View: incident.View{Incident: "20261121-abcdef", Opened: t0, Title: "mx1 (Incoming mail) is down",
			Boxes: []string{"mx"}, Down: []string{"mx1"},
			BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: events.BoxDegraded, Up: []string{"mx2"}}}}}
		if mod != nil {
			mod(st)
		}
		return st
	}
	down := func(st *incidentState) {
		st.BoxStates["mx"] = events.BoxStatus{Box: "mx", State: events.BoxDown}
		st.Down = []string{"mx1", "mx2"}
	}
	resolved := func(withdrawn []string, affected time.Duration) func(*incidentState) {
		return func(st *incidentState) {
			st.Withdrawn = withdrawn
			st.Resolved = &events.IncidentResolved{Incident: st.Incident, Opened: t0, Resolved: t0.Add(time.Hour), Title: st.Title,
				Servers: []string{"mx1"}, Withdrawn: withdrawn, Severity: events.SeverityOutage, CustomersAffectedMS: affected.Milliseconds()}
		}
	}
	tests := []struct {
		name          string
		st            *incidentState
		s             sending
		subject, sms  string
		text, notText []string
	}{
		{"a server down, its box serving", base(nil), sending{Kind: kindOpened, Severity: events.SeverityDegraded},
			"[Example Hosting] DEGRADED: mx1 (Incoming mail) is down [20261121-abcdef]",
			"DOWN abcdef: mx1 (Incoming mail) is down. DEGRADED: service still available, other servers answer (mx2). Reply ACK abcdef",
			nil, []string{"OUTAGE"}},
		{"a box down from the start", base(down), sending{Kind: kindOpened, Severity: events.SeverityOutage},
			"[Example Hosting] OUTAGE: mx1 (Incoming mail) is down [20261121-abcdef]", "",
			[]string{"OUTAGE: no server answers in Incoming mail"}, []string{"still available"}},
		{"the box going down", base(func(st *incidentState) { down(st); st.Paged = events.SeverityDegraded }), sending{Kind: kindWorse, N: 1, Severity: events.SeverityOutage},
			"[Example Hosting] NOW DOWN: Incoming mail - no server answers [20261121-abcdef]",
			"NOW DOWN: Incoming mail - no server answers (abcdef). Customers are affected. Reply ACK abcdef",
			[]string{"Customers are affected"}, []string{"still available"}},
		{"unacknowledged, the box still serving", base(func(st *incidentState) { st.Policy.Started = t0.Add(50 * time.Minute) }),
			sending{Kind: kindEscalation, N: 1, Severity: events.SeverityDegraded},
			"[Example Hosting] STILL DEGRADED, not acknowledged for 10 min: mx1 (Incoming mail) is down [20261121-abcdef]",
			"STILL DEGRADED abcdef, unacknowledged for 10 min: mx1 (Incoming mail) is down. DEGRADED: service still available, other servers answer (mx2). Reply ACK abcdef",
			[]string{"Not acknowledged for 10 minutes"}, []string{"STILL DOWN", "m0s"}},
		{"unacknowledged, the box down", base(func(st *incidentState) { down(st); st.Policy.Started = t0.Add(55 * time.Minute) }),
			sending{Kind: kindEscalation, N: 2, Severity: events.SeverityOutage},
			"[Example Hosting] STILL OUTAGE, not acknowledged for 5 min: mx1 (Incoming mail) is down [20261121-abcdef]", "",
			[]string{"STILL DOWN abcdef, unacknowledged for 5 min", "Not acknowledged for 5 minutes"}, []string{"still available", "m0s"}},
		{"resolved: how long customers were hit", base(resolved(nil, 25*time.Minute)), sending{Kind: kindResolved},
			"[Example Hosting] RESOLVED: mx1 (Incoming mail) is down [20261121-abcdef]", "",
			[]string{"customers were affected for 25 minutes", "Servers down for: 1 hour", "(back up)"}, nil},
		{"taken out of service is not recovered", base(resolved([]string{"mx1"}, 0)), sending{Kind: kindResolved},
			"[Example Hosting] CLOSED: mx1 (Incoming mail) is down [20261121-abcdef]", "",
			[]string{"mx1 taken out of service", "taken out of service, not recovered", "no customer was affected"}, []string{"back up", "recovered."}},
		{"a warning", base(func(st *incidentState) {
			st.Warning, st.Title = true, "web1 (Websites): certificate expires in 5 days"
			st.BoxStates["mx"] = events.BoxStatus{Box: "mx", State: events.BoxOperational}
		}), sending{Kind: kindOpened, Severity: events.SeverityWarning},
			"[Example Hosting] WARNING: web1 (Websites): certificate expires in 5 days [20261121-abcdef]", "",
			[]string{"Every server still works"}, []string{"DOWN", "OUTAGE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := compose(cfg, tt.st, tt.s, t0.Add(time.Hour))
			if m.Subject != tt.subject {
				t.Errorf("subject\n%q, want\n%q", m.Subject, tt.subject)
			}
			if tt.sms != "" && m.SMS != tt.sms {
				t.Errorf("SMS\n%q, want\n%q", m.SMS, tt.sms)
			}
			text := m.body.text()
			for _, w := range tt.text {
				if !strings.Contains(text+m.SMS, w) {
					t.Errorf("lacks %q:\n%s\nSMS: %s", w, text, m.SMS)
				}
			}
			for _, w := range tt.notText {
				if strings.Contains(text+m.SMS, w) {
					t.Errorf("says %q:\n%s\nSMS: %s", w, text, m.SMS)
				}
			}
		})
	}
}
