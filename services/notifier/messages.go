package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/span"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// The kinds of message an incident brings.
const (
	kindOpened   = "opened"
	kindWorse    = "worse"
	kindDigest   = "update"
	kindReminder = "reminder"
	kindResolved = "resolved"
	// kindEscalation is a rung of the escalation policy after the
	// opening; kindAcked tells those paged that someone took it on.
	kindEscalation = "escalation"
	kindAcked      = "acked"
	// kindFailover is no incident's: failover keeps failing to move a
	// server, and someone must do it by hand.
	kindFailover = "failover"
)

// staffKey names a staff member in ids and delivery records without their
// address: stable while the address is.
func staffKey(s config.Staff) string {
	sum := sha256.Sum256([]byte(strings.ToLower(s.Email + "|" + s.Phone)))
	return hex.EncodeToString(sum[:6])
}

func mailDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			return a.Address[at+1:]
		}
	}
	return "tocsin.invalid"
}

// shortCode is the part of an incident id a person types in an SMS reply.
func shortCode(incident string) string {
	if i := strings.LastIndexByte(incident, '-'); i >= 0 {
		return incident[i+1:]
	}
	return incident
}

// body is an email's content, rendered as text and as HTML alike.
type body struct {
	Lead     string
	Note     string // said first, in bold: a channel that failed
	Sections [][][2]string
	AckURL   string
	Status   string
	Site     string
}

func (b *body) section(rows ...[2]string) { b.Sections = append(b.Sections, rows) }

func kv(k, v string) [2]string { return [2]string{k, v} }

func (b *body) text() string {
	var w strings.Builder
	if b.Note != "" {
		fmt.Fprintf(&w, "%s\n\n", b.Note)
	}
	fmt.Fprintf(&w, "%s\n", b.Lead)
	for _, s := range b.Sections {
		w.WriteString("\n")
		for _, r := range s {
			fmt.Fprintf(&w, "%-15s %s\n", r[0]+":", r[1])
		}
	}
	if b.AckURL != "" {
		fmt.Fprintf(&w, "\nAcknowledge: %s\n", b.AckURL)
	}
	if b.Status != "" {
		fmt.Fprintf(&w, "\nStatus page: %s\n", b.Status)
	}
	fmt.Fprintf(&w, "\n-- \nTocsin, the outage alarm of %s\n", b.Site)
	return w.String()
}

var htmlBody = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html><body style="font-family: sans-serif; color: #111">
{{if .Note}}<p><strong>{{.Note}}</strong></p>{{end}}
<p style="font-size: 1.1em">{{.Lead}}</p>
{{range .Sections}}<table style="border-collapse: collapse; margin: 0.8em 0">
{{range .}}<tr><th style="text-align: left; padding: 2px 12px 2px 0; vertical-align: top">{{index . 0}}</th><td style="padding: 2px 0">{{index . 1}}</td></tr>
{{end}}</table>
{{end}}{{if .AckURL}}<p><a href="{{.AckURL}}">Acknowledge this incident</a></p>{{end}}
{{if .Status}}<p>Status page: <a href="{{.Status}}">{{.Status}}</a></p>{{end}}
<p style="color: #555">Tocsin, the outage alarm of {{.Site}}</p>
</body></html>
`))

func (b *body) html() string {
	var w strings.Builder
	if err := htmlBody.Execute(&w, b); err != nil {
		return "" // the text part alone still says it all
	}
	return w.String()
}

// message is what one kind of message says, before it is addressed.
type message struct {
	Incident, Kind string
	N              int // which update or reminder
	Severity       events.Severity
	Subject, Lead  string
	body           body
	SMS            string
	// key, plain and headers are for a message that is not an
	// incident's: its delivery key, its text as it is, and its headers.
	key, plain string
	headers    map[string]string
}

// step names the message within the incident: in ids and delivery keys.
func (m message) step() string {
	if m.N > 0 {
		return fmt.Sprintf("%s-%d", m.Kind, m.N)
	}
	return m.Kind
}

// base names the message in delivery keys and in its Message's Key: the
// incident and step, or the event of a failover alert.
func (m message) base() string {
	if m.key != "" {
		return m.key
	}
	return m.Incident + "." + m.step()
}

// to addresses the message to one person, threaded under the opening of
// its incident. When it carries a message that failed on another channel,
// it says so first.
func (m message) to(s config.Staff, ackURL, failed, why, by string) Message {
	b := m.body
	b.AckURL = ackURL
	short := m.SMS
	if failed != "" {
		b.Note = fmt.Sprintf("The %s to you about this could not be delivered (%s); this %s carries it instead.", label(failed), why, label(by))
		short = "(" + label(failed) + " failed) " + short
	}
	out := Message{
		To: s, Key: m.base() + "." + staffKey(s), Incident: m.Incident, Kind: m.Kind,
		Subject: m.Subject, Short: short, Headers: m.headers,
	}
	if m.plain != "" {
		out.Text = m.plain
		if b.Note != "" {
			out.Text = b.Note + "\n\n" + m.plain
		}
	} else {
		out.Text, out.HTML = b.text(), b.html()
	}
	if out.Headers == nil {
		out.Headers = map[string]string{"X-Tocsin-Incident": m.Incident}
	}
	if m.key == "" && m.Kind != kindOpened {
		out.Thread = m.Incident + "." + kindOpened + "." + staffKey(s)
	}
	return out
}

// compose writes the message that s claims about the incident as st holds
// it. Every message says first how bad it is, in the words of its severity:
// an outage is never "still available", a server taken out of service
// never "recovered".
func compose(cfg *config.Config, st *incidentState, s sending, now time.Time) message {
	sev := s.Severity
	if sev == "" {
		sev = st.Severity()
	}
	m := message{Incident: st.Incident, Kind: s.Kind, N: s.N, Severity: sev}
	code := shortCode(st.Incident)
	site := cfg.Site.Name
	b := body{Status: cfg.Site.StatusURL, Site: site}
	service := st.serviceLine(cfg)
	withdrawn := ""
	if len(st.Withdrawn) > 0 {
		withdrawn = fmt.Sprintf(" %s taken out of service.", strings.Join(st.Withdrawn, ", "))
	}
	switch s.Kind {
	case kindOpened:
		switch {
		case st.Warning:
			m.Subject = fmt.Sprintf("[%s] WARNING: %s [%s]", site, st.Title, st.Incident)
			b.Lead = st.Title + ". Every server still works: this is a warning, to be fixed before it fails."
		case st.OpenedFlapping:
			m.Subject = fmt.Sprintf("[%s] FLAPPING: %s [%s]", site, st.Title, st.Incident)
			b.Lead = st.Title + ", again: it keeps going down and coming back, so nobody is paged about it until it settles. " + service + "."
			m.SMS = fmt.Sprintf("FLAPPING %s: %s again. %s. Reply ACK %s", code, st.Title, service, code)
		default:
			m.Subject = fmt.Sprintf("[%s] %s: %s [%s]", site, word(sev), st.Title, st.Incident)
			b.Lead = st.Title + ". " + service + "."
			m.SMS = fmt.Sprintf("DOWN %s: %s. %s. Reply ACK %s", code, st.Title, service, code)
		}
	case kindWorse:
		names := boxNames(cfg, st.newlyDown())
		what := "NOW DOWN: " + listed(names, 3) + " - no server answers"
		if len(names) == 0 {
			what = "NOW " + word(sev) + ": " + st.Title
		}
		m.Subject = fmt.Sprintf("[%s] %s [%s]", site, what, st.Incident)
		b.Lead = fmt.Sprintf("Worse: %s. %s. Customers are affected.", what, service)
		if sev != events.SeverityOutage {
			b.Lead = fmt.Sprintf("Worse: %s. %s.", what, service)
		}
		m.SMS = fmt.Sprintf("%s (%s). Customers are affected. Reply ACK %s", what, code, code)
		if sev != events.SeverityOutage {
			m.SMS = fmt.Sprintf("%s (%s). %s. Reply ACK %s", what, code, service, code)
		}
	case kindDigest:
		m.Subject = fmt.Sprintf("[%s] UPDATE: %s [%s]", site, st.Title, st.Incident)
		b.Lead = fmt.Sprintf("Update: %s; %d still down.%s %s.", st.Title, len(st.Down), withdrawn, service)
		flapping := ""
		if len(st.Flapping) > 0 {
			flapping = fmt.Sprintf(" (%s flapping: no more pages until it settles)", strings.Join(st.Flapping, ", "))
		}
		m.SMS = fmt.Sprintf("UPDATE %s: %s; %d still down%s.%s %s", code, st.Title, len(st.Down), flapping, withdrawn, service)
	case kindReminder:
		for_ := now.Sub(st.Opened)
		if st.Warning {
			m.Subject = fmt.Sprintf("[%s] WARNING, still not fixed: %s [%s]", site, st.Title, st.Incident)
			b.Lead = fmt.Sprintf("Still not fixed after %s: %s. Every server still works; this email comes once a day until it is fixed.", span.Long(for_), st.Title)
			break
		}
		m.Subject = fmt.Sprintf("[%s] STILL %s, not acknowledged: %s [%s]", site, word(sev), st.Title, st.Incident)
		b.Lead = fmt.Sprintf("Still down after %s, and nobody has acknowledged it: %s. %s.", span.Long(for_), st.Title, service)
		m.SMS = fmt.Sprintf("STILL %s %s after %s, unacknowledged: %s. %s. Reply ACK %s", still(sev), code, span.Short(for_), st.Title, service, code)
	case kindEscalation:
		for_ := now.Sub(st.Policy.Started)
		skipped := skips(s.Steps)
		m.Subject = fmt.Sprintf("[%s] STILL %s, not acknowledged for %s: %s [%s]", site, word(sev), span.Short(for_), st.Title, st.Incident)
		b.Lead = fmt.Sprintf("Not acknowledged for %s: %s. %s.%s", span.Long(for_), st.Title, service, skipped)
		m.SMS = fmt.Sprintf("STILL %s %s, unacknowledged for %s: %s. %s.%s Reply ACK %s", still(sev), code, span.Short(for_), st.Title, service, skipped, code)
	case kindAcked:
		a := s.Ack
		if a == nil && st.Acked != nil {
			a = &policy.Ack{By: st.Acked.By, At: st.Acked.At}
		} else if a == nil {
			a = &policy.Ack{By: "someone", At: now}
		}
		at := a.At.UTC().Format("15:04")
		m.Subject = fmt.Sprintf("[%s] ACK by %s at %s: %s [%s]", site, a.By, at, st.Title, st.Incident)
		b.Lead = fmt.Sprintf("ACK by %s at %s UTC: %s. No later rung will page anyone; worse news still will.", a.By, at, st.Title)
		m.SMS = fmt.Sprintf("ACK by %s at %s (%s)", a.By, at, code)
	case kindResolved:
		r := st.Resolved
		lasted := r.Resolved.Sub(r.Opened)
		verb, how := "RESOLVED", "back up"
		switch {
		case st.Warning:
			how = "fixed"
		case len(st.Withdrawn) == len(r.Servers):
			verb, how = "CLOSED", "taken out of service, not recovered"
		}
		hit := "no customer was affected: every service kept answering"
		if a := r.CustomersAffected(); a > 0 {
			hit = fmt.Sprintf("customers were affected for %s", span.Long(a))
		}
		if st.Warning {
			hit = "nothing failed"
		}
		m.Subject = fmt.Sprintf("[%s] %s: %s [%s]", site, verb, st.Title, st.Incident)
		b.Lead = fmt.Sprintf("%s after %s: %s. The incident was: %s.%s", capital(strings.ToLower(verb)), span.Long(lasted), hit, st.Title, withdrawn)
		rows := [][2]string{kv("Incident", st.Incident)}
		if r.Severity != "" {
			rows = append(rows, kv("Severity", string(r.Severity)))
		}
		rows = append(rows, kv("Servers", strings.Join(r.Servers, ", ")))
		if len(st.Withdrawn) > 0 {
			rows = append(rows, kv("Taken out", strings.Join(st.Withdrawn, ", ")+" (out of service, not recovered)"))
		}
		rows = append(rows, kv("Confirmed down", stamp(r.Opened)), kv("Over", stamp(r.Resolved)+" ("+how+")"),
			kv("Servers down for", span.Long(lasted)), kv("Customers", hit))
		b.section(rows...)
		m.SMS = fmt.Sprintf("%s %s: %s, after %s; %s.%s", verb, code, st.Title, span.Short(lasted), hit, withdrawn)
		m.body = b
		return m
	}
	head := []([2]string){kv("Incident", st.Incident), kv("Severity", string(sev)), kv("Confirmed", stamp(st.Opened)), kv("Status", service)}
	if len(st.Down) > 1 {
		head = append(head, kv("Still down", fmt.Sprintf("%d servers: %s", len(st.Down), strings.Join(st.Down, ", "))))
	}
	if len(st.Withdrawn) > 0 {
		head = append(head, kv("Taken out", strings.Join(st.Withdrawn, ", ")+": out of service, not recovered"))
	}
	if a := st.Acked; a != nil {
		head = append(head, kv("Acknowledged", fmt.Sprintf("by %s (%s) at %s", a.By, a.Via, stamp(a.At))))
	}
	if len(st.Flapping) > 0 {
		head = append(head, kv("Flapping", strings.Join(st.Flapping, ", ")+": down and up again and again; the incident stays open, and nobody is paged about it again, until it has been up a while"))
	}
	b.section(head...)
	for _, a := range st.Servers {
		if !slices.Contains(st.Down, a.Server) {
			continue
		}
		rows := [][2]string{kv("Server", a.Server)}
		rows = append(rows, boxRows(cfg, a.Box)...)
		rows = append(rows, kv("Check", a.Check), kv("Failing since", stamp(a.Since)))
		seen := a.Reason
		if len(a.Locations) > 0 {
			seen += " (from " + strings.Join(a.Locations, ", ") + ")"
		}
		label := "Checks saw"
		if st.Warning {
			label = "Warning"
		}
		rows = append(rows, kv(label, seen))
		if a.Verification != "" {
			rows = append(rows, kv("Verified", a.Verification))
		}
		b.section(rows...)
		if len(b.Sections) > 25 {
			b.section(kv("…", fmt.Sprintf("and %d more servers", len(st.Down)-24)))
			break
		}
	}
	m.body = b
	return m
}

// skips says which rungs before this message reached nobody, " " first;
// "" when none did.
func skips(steps []policy.Step) string {
	var out []string
	for _, st := range steps {
		for _, k := range st.Skips {
			for _, w := range k.Who {
				switch w {
				case config.WhoSecondary:
					out = append(out, "nobody was on call as secondary")
				case config.WhoOnCall:
					out = append(out, "nobody on call could be reached")
				case config.WhoTeam:
					out = append(out, "nobody in the team could be reached")
				default:
					out = append(out, w+" could not be reached")
				}
			}
		}
	}
	out = slices.Compact(out)
	if len(out) == 0 {
		return ""
	}
	return " " + capital(strings.Join(out, "; ")) + "."
}

// still is what an unacknowledged incident still is, as an SMS leads with
// it: a box serving nobody is DOWN; one that still serves is DEGRADED, so
// that nobody reads a dead server as a dead service.
func still(sev events.Severity) string {
	if sev == events.SeverityOutage {
		return "DOWN"
	}
	return "DEGRADED"
}

// word is a severity as a message's subject shouts it.
func word(sev events.Severity) string {
	switch sev {
	case events.SeverityOutage:
		return "OUTAGE"
	case events.SeverityWarning:
		return "WARNING"
	}
	return "DEGRADED"
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// newlyDown is the boxes serving nobody that the last message telling of
// the incident did not name as such.
func (st *incidentState) newlyDown() []string {
	var out []string
	_, told := st.lastTold()
	for _, b := range st.DownBoxes() {
		if !slices.Contains(told, b) {
			out = append(out, b)
		}
	}
	return out
}

// listed names at most n things, and counts the rest.
func listed(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

func boxNames(cfg *config.Config, ids []string) []string {
	names := make([]string, 0, len(ids))
	for _, id := range ids {
		name := id
		if b := cfg.Box(id); b != nil {
			name = b.Name
		}
		names = append(names, name)
	}
	return names
}

// serviceLine says at once whether the service is still available: what
// staff need to know first.
func (st *incidentState) serviceLine(cfg *config.Config) string {
	var degraded []string
	for _, id := range st.Boxes {
		if bs, ok := st.BoxStates[id]; ok && bs.State == events.BoxDegraded {
			degraded = append(degraded, id)
		}
	}
	switch {
	case st.Warning:
		return "Service available: nothing has failed yet"
	case len(st.DownBoxes()) > 0:
		return "OUTAGE: no server answers in " + strings.Join(boxNames(cfg, st.DownBoxes()), ", ")
	case len(degraded) > 0:
		still := ""
		for _, id := range degraded {
			if up := st.BoxStates[id].Up; len(up) > 0 {
				still = " (" + strings.Join(up, ", ") + ")"
				break
			}
		}
		return "DEGRADED: service still available, other servers answer" + still
	}
	return "Service available"
}

func boxRows(cfg *config.Config, id string) [][2]string {
	b := cfg.Box(id)
	if b == nil {
		return [][2]string{kv("Box", id)}
	}
	rows := [][2]string{kv("Box", fmt.Sprintf("%s (%s)", b.Name, b.ID))}
	if b.Role != "" {
		rows = append(rows, kv("Role", cfg.RoleLabel(b)))
	}
	if dc, ok := cfg.Datacentres[b.Datacentre]; ok {
		rows = append(rows, kv("Datacentre", dc.Name))
	}
	return rows
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
