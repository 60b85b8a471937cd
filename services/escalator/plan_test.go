package escalator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// openAt is an incident opened at t0 with mx down, of which staff were
// told at once as an outage; mod, if not nil, changes it.
func openAt(t0 time.Time, mod func(*state)) state {
	st := state{View: incident.View{Incident: "i", Opened: t0, BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: events.BoxDown}},
		OutageSince: t0, Told: events.SeverityOutage, ToldDown: []string{"mx"}, ToldAt: t0}}
	if mod != nil {
		mod(&st)
	}
	return st
}

func TestDue(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	open := func(mod func(*state)) state { return openAt(t0, mod) }
	dc, social := 15*time.Minute, time.Hour
	tests := []struct {
		name  string
		st    state
		now   time.Time
		steps []string
		next  time.Time
	}{
		{"nothing due yet", open(nil), t0.Add(time.Minute), nil, t0.Add(dc)},
		{"the datacentre", open(nil), t0.Add(dc), []string{"datacentre"}, t0.Add(social)},
		{"then the public", open(func(s *state) { s.DatacentreDone = t0.Add(dc) }), t0.Add(social), []string{"social"}, time.Time{}},
		{"both, after a long stop", open(nil), t0.Add(2 * time.Hour), []string{"datacentre", "social"}, time.Time{}},
		{"resolved: nothing", open(func(s *state) { s.Resolved = &events.IncidentResolved{} }), t0.Add(2 * time.Hour), nil, time.Time{}},
		{"cancelled by an acknowledgement", open(func(s *state) { s.Cancelled = map[string]bool{"datacentre": true} }), t0.Add(20 * time.Minute), nil, t0.Add(social)},
		{"a box still serving: not public", open(func(s *state) {
			s.DatacentreDone, s.BoxStates["mx"] = t0, events.BoxStatus{Box: "mx", State: events.BoxDegraded}
		}), t0.Add(2 * time.Hour), nil, time.Time{}},
		{"done already", open(func(s *state) { s.DatacentreDone, s.SocialDone = t0, t0 }), t0.Add(2 * time.Hour), nil, time.Time{}},
		{"the datacentre waits for the people on call to be paged", open(func(s *state) { s.Told, s.ToldAt = "", time.Time{} }), t0.Add(dc), nil, t0.Add(social)},
		// The ticket would say customers are affected, which staff were
		// not told yet: it waits for the page about the outage, as the
		// public does.
		{"staff told of a box still serving, now down: nobody further until they are paged about it",
			open(func(s *state) { s.Told, s.ToldDown = events.SeverityDegraded, nil }), t0.Add(2 * time.Hour), nil, time.Time{}},
		{"another box down that no page named: the ticket and the posts wait for the page", open(func(s *state) {
			s.Boxes, s.BoxStates["web"] = []string{"mx", "web"}, events.BoxStatus{Box: "web", State: events.BoxDown}
		}), t0.Add(2 * time.Hour), nil, time.Time{}},
		{"a degraded incident staff were told of: the datacentre", open(func(s *state) {
			s.Told, s.ToldDown, s.OutageSince, s.BoxStates["mx"] = events.SeverityDegraded, nil, time.Time{}, events.BoxStatus{Box: "mx", State: events.BoxDegraded}
		}), t0.Add(2 * time.Hour), []string{"datacentre"}, time.Time{}},
		{"the public clock starts when a box went down", open(func(s *state) { s.OutageSince = t0.Add(30 * time.Minute) }), t0.Add(social),
			[]string{"datacentre"}, t0.Add(30 * time.Minute).Add(social)},
		{"no box down yet: no public clock", open(func(s *state) {
			s.OutageSince, s.BoxStates["mx"] = time.Time{}, events.BoxStatus{Box: "mx", State: events.BoxDegraded}
		}), t0.Add(dc), []string{"datacentre"}, time.Time{}},
		{"a warning never escalates", open(func(s *state) { s.Warning = true }), t0.Add(2 * time.Hour), nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, next := due(&tt.st, dc, social, tt.now)
			if !slices.Equal(steps, tt.steps) || !next.Equal(tt.next) {
				t.Errorf("got %v, next %s; want %v, next %s", steps, next, tt.steps, tt.next)
			}
		})
	}
	if steps, next := due(&state{View: incident.View{Opened: t0, BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: events.BoxDown}}}}, 0, 0, t0.Add(time.Hour)); steps != nil || !next.IsZero() {
		t.Errorf("steps turned off: %v %s", steps, next)
	}
}

// TestDuePublicAfterDatacentre: the datacentre hears before the public,
// whichever timeout is shorter, unless its step is off or cancelled; and
// the public goes with the datacentre's first attempt, however that ends.
func TestDuePublicAfterDatacentre(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	open := func(mod func(*state)) state { return openAt(t0, mod) }
	tests := []struct {
		name       string
		st         state
		dc, social time.Duration
		now        time.Time
		steps      []string
		next       time.Time
	}{
		{"a public timeout shorter than the datacentre's waits for it", open(nil), time.Hour, 15 * time.Minute, t0.Add(20 * time.Minute), nil, t0.Add(time.Hour)},
		{"then both go, the datacentre first", open(nil), time.Hour, 15 * time.Minute, t0.Add(time.Hour), []string{"datacentre", "social"}, time.Time{}},
		{"the datacentre's email failing: taken again, and the public goes with it", open(nil), 15 * time.Minute, time.Hour, t0.Add(time.Hour),
			[]string{"datacentre", "social"}, time.Time{}},
		{"the datacentre's step cancelled: the public does not wait", open(func(s *state) { s.Cancelled = map[string]bool{"datacentre": true} }),
			time.Hour, 15 * time.Minute, t0.Add(20 * time.Minute), []string{"social"}, time.Time{}},
		{"the datacentre's step off: the public does not wait", open(nil), 0, 15 * time.Minute, t0.Add(20 * time.Minute), []string{"social"}, time.Time{}},
		{"the datacentre told: the public goes", open(func(s *state) { s.DatacentreDone = t0.Add(time.Minute) }), time.Minute, 15 * time.Minute, t0.Add(20 * time.Minute),
			[]string{"social"}, time.Time{}},
		{"the datacentre waiting for staff to be paged: so does the public", open(func(s *state) { s.Told, s.ToldAt = "", time.Time{} }),
			time.Minute, 15 * time.Minute, t0.Add(20 * time.Minute), nil, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, next := due(&tt.st, tt.dc, tt.social, tt.now)
			if !slices.Equal(steps, tt.steps) || !next.Equal(tt.next) {
				t.Errorf("got %v, next %s; want %v, next %s", steps, next, tt.steps, tt.next)
			}
		})
	}
}

func publicConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(`
site: {name: Example Hosting, status_url: "https://status.example.net"}
locations: [lon1]
roles: {mx: {label: Incoming mail (MX)}, web: {label: Web hosting}}
datacentres: {dc1: {name: DC One, email: noc@dc1.example}}
boxes:
  - {id: mx, name: Incoming mail, role: mx, datacentre: dc1, servers: [{id: mx1, check: "smtp://mx1.internal.example.net:25"}, {id: mx2, check: "tcp://192.0.2.10:25"}]}
  - {id: web, name: Websites, role: web, datacentre: dc1, servers: [{id: web-07, check: "https://web07.int.example.net/healthz"}]}
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: alarm@example.net}}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPublicTextsHoldNothingInternal: whatever staff write, no public text
// names a server, a hostname or an address from the config.
func TestPublicTextsHoldNothingInternal(t *testing.T) {
	cfg := publicConfig(t)
	st := &state{View: incident.View{Incident: "20261121-abcdef", Boxes: []string{"mx", "web"}, EverDown: []string{"mx", "web"}, Title: "mx1 and web-07 down"}}
	note := events.IncidentNote{Incident: st.Incident, Seq: 1, Status: "identified", By: "Alice",
		Message: "mx1.internal.example.net lost its disk; mx1 and MX2 rebooting, 192.0.2.10 back soon, web-07 / web07 too. Webmail is fine."}
	texts := []string{outageText(cfg, st), noteText(cfg, note), resolvedText(cfg, st), bannerText(cfg, st.Boxes)}
	for _, text := range texts {
		for _, name := range internalNames(cfg) {
			if strings.Contains(strings.ToLower(text), strings.ToLower(name)) {
				t.Errorf("%q holds the internal name %q", text, name)
			}
		}
	}
	want := "Example Hosting: we are working on a problem with Incoming mail (Incoming mail (MX)) and Websites (Web hosting). Some services may be unavailable. Updates: https://status.example.net"
	if texts[0] != want {
		t.Errorf("outage text\n%q, want\n%q", texts[0], want)
	}
	if want := "Update (identified): a server lost its disk; a server and a server rebooting, a server back soon, a server / a server too. Webmail is fine. Updates: https://status.example.net"; texts[1] != want {
		t.Errorf("note text\n%q, want\n%q", texts[1], want)
	}
	// A box down and back before any page named it is not named to the
	// public before staff heard of it.
	st.ToldDown = []string{"web"}
	if got := outageText(cfg, st); strings.Contains(got, "Incoming mail") || !strings.Contains(got, "Websites") {
		t.Errorf("outage text names what staff were not told: %q", got)
	}
	if got := bannerText(cfg, st.publicDown()); strings.Contains(got, "Incoming mail") {
		t.Errorf("banner names what staff were not told: %q", got)
	}
	for _, text := range texts {
		if len([]rune(text)) > 280 {
			t.Errorf("%d characters: too long for X: %q", len([]rune(text)), text)
		}
	}
}

// TestTicketAndPostWords: what the datacentre and the public read matches
// what happened: a box down is never said to still answer, a server taken
// out of service is said to be, and how long customers were hit is said.
func TestTicketAndPostWords(t *testing.T) {
	cfg := publicConfig(t)
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
	down := func() *state {
		return &state{View: incident.View{Incident: "20261121-abcdef", Opened: t0, Title: "mx1 and mx2 (Incoming mail) are down",
			Boxes: []string{"mx"}, EverDown: []string{"mx"}, Down: []string{"mx1", "mx2"}, OutageSince: t0,
			BoxStates: map[string]events.BoxStatus{"mx": {Box: "mx", State: events.BoxDown}},
			Told:      events.SeverityOutage, ToldDown: []string{"mx"}, ToldAt: t0}}
	}
	resolved := func(withdrawn []string, affected time.Duration) *state {
		st := down()
		st.Resolved = &events.IncidentResolved{Incident: st.Incident, Opened: t0, Resolved: t0.Add(time.Hour), Title: st.Title,
			Servers: []string{"mx1", "mx2"}, Withdrawn: withdrawn, Severity: events.SeverityOutage, CustomersAffectedMS: affected.Milliseconds()}
		return st
	}
	text := func(st *state, step string) string {
		m := ticketEmail(cfg, st, "dc1", step, "example.net", nil, t0.Add(20*time.Minute))
		return m.Subject + "\n" + m.Text
	}
	tests := []struct {
		name          string
		text          string
		want, notWant []string
	}{
		{"the ticket for a box down", text(down(), "opened"),
			[]string{"Customers are affected: no server of Incoming mail answers", "still down after 20 minutes"}, []string{"still answers", "still available", "m0s"}},
		{"the post for a box down", outageText(cfg, down()), []string{"Incoming mail"}, []string{"still answers", "still available"}},
		{"the banner for a box down", bannerText(cfg, down().publicDown()), []string{"Incoming mail"}, []string{"still answers", "still available"}},
		{"the ticket closed for servers taken out of service", text(resolved([]string{"mx1", "mx2"}, 0), "resolved"),
			[]string{"we took mx1, mx2 out of service"}, []string{"answering again"}},
		{"the ticket closed with one back, one taken out", text(resolved([]string{"mx2"}, 0), "resolved"),
			[]string{"mx1 answering again", "we took mx2 out of service"}, nil},
		{"the ticket says how long customers were hit", text(resolved(nil, 25*time.Minute), "resolved"),
			[]string{"Customers were affected for 25 minutes of it", "after 1 hour"}, []string{"m0s"}},
		{"the resolution post says how long service was hit", resolvedText(cfg, resolved(nil, 25*time.Minute)),
			[]string{"affected for 25 minutes"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				if !strings.Contains(tt.text, w) {
					t.Errorf("lacks %q:\n%s", w, tt.text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(tt.text, w) {
					t.Errorf("says %q:\n%s", w, tt.text)
				}
			}
		})
	}
}
