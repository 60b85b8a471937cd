package escalator

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/span"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The datacentre's email reads as a ticket a technician can act on: the
// incident reference in the subject, the servers with their addresses,
// since when, what the checks saw from where; follow-ups in one thread.

// datacentresOf is the datacentres an incident's boxes are in that have an
// address to write to, in order.
func datacentresOf(cfg *config.Config, boxes []string) []string {
	var out []string
	for _, id := range boxes {
		if b := cfg.Box(id); b != nil {
			if dc, ok := cfg.Datacentres[b.Datacentre]; ok && dc.Email != "" {
				out = appendNew(out, b.Datacentre)
			}
		}
	}
	return out
}

func ticketID(incident, dc, step, domain string) string {
	return fmt.Sprintf("tocsin.%s.dc-%s.%s@%s", incident, dc, step, domain)
}

// ticketEmail is one message of the thread with a datacentre: step is
// "opened", "note-N" or "resolved".
func ticketEmail(cfg *config.Config, st *state, dcID, step, domain string, note *events.IncidentNote, now time.Time) smtpmail.Message {
	dc := cfg.Datacentres[dcID]
	site := cfg.Site.Name
	var b strings.Builder
	var subject string
	switch {
	case step == "opened":
		subject = fmt.Sprintf("[%s] Ticket request: %s at %s [%s]", site, st.Title, dc.Name, st.Incident)
		fmt.Fprintf(&b, "Hello %s,\n\nPlease open a ticket: servers of ours in your datacentre stopped answering at %s and are still down after %s.\n",
			dc.Name, stamp(st.Opened), span.Long(now.Sub(st.Opened)))
		if st.Public() {
			fmt.Fprintf(&b, "Customers are affected: no server of %s answers.\n", strings.Join(boxNamesIn(cfg, st.DownBoxes()), ", "))
		} else {
			b.WriteString("Our service still answers from other servers, with less redundancy.\n")
		}
		b.WriteString("Our staff are aware; please reply to this email with your ticket number and findings.\n")
		servers(&b, cfg, st, dcID)
	case note != nil:
		subject = fmt.Sprintf("Re: [%s] Ticket request: %s at %s [%s]", site, st.Title, dc.Name, st.Incident)
		fmt.Fprintf(&b, "Update from %s (%s), %s:\n\n%s\n", note.By, note.Status, stamp(note.At), note.Message)
	default:
		subject = fmt.Sprintf("Re: [%s] Resolved: %s at %s [%s]", site, st.Title, dc.Name, st.Incident)
		r := st.Resolved
		lasted := span.Long(r.Resolved.Sub(r.Opened))
		back := slices.DeleteFunc(slices.Clone(r.Servers), func(s string) bool { return slices.Contains(r.Withdrawn, s) })
		switch {
		case len(back) == 0:
			fmt.Fprintf(&b, "Closed at %s, after %s: we took %s out of service; nothing more is needed from you on it. The ticket can be closed.\n",
				stamp(r.Resolved), lasted, strings.Join(r.Withdrawn, ", "))
		case len(r.Withdrawn) > 0:
			fmt.Fprintf(&b, "Resolved: %s answering again since %s, after %s; we took %s out of service. The ticket can be closed.\n",
				strings.Join(back, ", "), stamp(r.Resolved), lasted, strings.Join(r.Withdrawn, ", "))
		default:
			fmt.Fprintf(&b, "Resolved: every server is answering again since %s, after %s. The ticket can be closed.\n",
				stamp(r.Resolved), lasted)
		}
		if a := r.CustomersAffected(); a > 0 {
			fmt.Fprintf(&b, "Customers were affected for %s of it.\n", span.Long(a))
		}
	}
	fmt.Fprintf(&b, "\nIncident: %s\n-- \nTocsin, the outage alarm of %s\n", st.Incident, site)
	m := smtpmail.Message{
		To: dc.Email, ToName: dc.Name, Subject: subject,
		MessageID: ticketID(st.Incident, dcID, step, domain),
		Text:      b.String(),
		Headers:   map[string]string{"X-Tocsin-Incident": st.Incident},
	}
	if step != "opened" {
		first := ticketID(st.Incident, dcID, "opened", domain)
		m.InReplyTo, m.References = first, []string{first}
	}
	return m
}

// servers lists the servers of the incident in one datacentre, as a
// technician needs them.
func servers(b *strings.Builder, cfg *config.Config, st *state, dcID string) {
	var listed []string
	for _, a := range st.Servers {
		box := cfg.Box(a.Box)
		if box == nil || box.Datacentre != dcID || !slices.Contains(st.Down, a.Server) {
			continue
		}
		listed = append(listed, a.Server)
		fmt.Fprintf(b, "\n%-14s %s\n", "Server:", a.Server)
		if u, err := url.Parse(a.Check); err == nil && u.Host != "" {
			fmt.Fprintf(b, "%-14s %s\n", "Address:", u.Host)
		}
		fmt.Fprintf(b, "%-14s %s (%s)\n", "Box:", box.Name, box.ID)
		fmt.Fprintf(b, "%-14s %s\n", "Check:", a.Check)
		fmt.Fprintf(b, "%-14s %s\n", "Down since:", stamp(a.Since))
		seen := a.Reason
		if len(a.Locations) > 0 {
			seen += " (from " + strings.Join(a.Locations, ", ") + ")"
		}
		fmt.Fprintf(b, "%-14s %s\n", "Checks saw:", seen)
	}
	var more []string
	for _, s := range st.Down {
		if t, ok := cfg.Target(s); ok && t.Box.Datacentre == dcID && !slices.Contains(listed, s) {
			more = append(more, s)
		}
	}
	if len(more) > 0 {
		fmt.Fprintf(b, "\nAlso down: %s\n", strings.Join(more, ", "))
	}
}

func boxNamesIn(cfg *config.Config, ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if b := cfg.Box(id); b != nil {
			out = append(out, b.Name)
		} else {
			out = append(out, id)
		}
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
