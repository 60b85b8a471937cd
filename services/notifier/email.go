package notifier

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/smtpmail"
)

// staffKey names a staff member in ids and delivery records without their
// address: stable while the address is.
func staffKey(s config.Staff) string {
	sum := sha256.Sum256([]byte(strings.ToLower(s.Email + "|" + s.Phone)))
	return hex.EncodeToString(sum[:6])
}

// messageID is the Message-ID of one step of an incident for one person.
// It is derived, not random: a message sent twice carries the same id, and
// every later message of the incident can refer to the first.
func messageID(incident, step string, s config.Staff, domain string) string {
	return fmt.Sprintf("tocsin.%s.%s.%s@%s", incident, step, staffKey(s), domain)
}

func mailDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			return a.Address[at+1:]
		}
	}
	return "tocsin.invalid"
}

// openedEmail is the first message of an incident: what is down, since when,
// what the checks saw, and where to look.
func openedEmail(cfg *config.Config, o *events.IncidentOpened, s config.Staff, domain string) smtpmail.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.\n\n", o.Title)
	row(&b, "Incident", o.Incident)
	row(&b, "Confirmed", stamp(o.Opened))
	for _, a := range o.Servers {
		b.WriteString("\n")
		row(&b, "Server", a.Server)
		boxRows(&b, cfg, a.Box)
		switch a.BoxState {
		case events.BoxDown:
			row(&b, "Service", "DOWN: no server of the box answers")
		case events.BoxDegraded, events.BoxOperational:
			row(&b, "Service", "still available: "+strings.Join(a.StillUp, ", ")+" answering")
		}
		row(&b, "Check", a.Check)
		row(&b, "Failing since", stamp(a.Since))
		seen := a.Reason
		if len(a.Locations) > 0 {
			seen += " (from " + strings.Join(a.Locations, ", ") + ")"
		}
		row(&b, "Checks saw", seen)
		if a.Verification != "" {
			row(&b, "Verified", a.Verification)
		}
	}
	footer(&b, cfg)
	return smtpmail.Message{
		To: s.Email, ToName: s.Name,
		Subject:   fmt.Sprintf("[%s] DOWN: %s [%s]", cfg.Site.Name, o.Title, o.Incident),
		MessageID: messageID(o.Incident, "opened", s, domain),
		Text:      b.String(),
		Headers:   map[string]string{"X-Tocsin-Incident": o.Incident},
	}
}

// resolvedEmail closes the thread the opened email began.
func resolvedEmail(cfg *config.Config, r *events.IncidentResolved, s config.Staff, domain string) smtpmail.Message {
	var b strings.Builder
	fmt.Fprintf(&b, "Resolved: %s.\n\n", r.Title)
	row(&b, "Incident", r.Incident)
	row(&b, "Servers", strings.Join(r.Servers, ", "))
	row(&b, "Confirmed down", stamp(r.Opened))
	row(&b, "Back up", stamp(r.Resolved))
	row(&b, "Outage lasted", r.Duration().Round(time.Second).String())
	footer(&b, cfg)
	first := "<" + messageID(r.Incident, "opened", s, domain) + ">"
	return smtpmail.Message{
		To: s.Email, ToName: s.Name,
		Subject:    fmt.Sprintf("[%s] RESOLVED: %s [%s]", cfg.Site.Name, r.Title, r.Incident),
		MessageID:  messageID(r.Incident, "resolved", s, domain),
		InReplyTo:  first,
		References: []string{first},
		Text:       b.String(),
		Headers:    map[string]string{"X-Tocsin-Incident": r.Incident},
	}
}

func boxRows(w *strings.Builder, cfg *config.Config, id string) {
	for i := range cfg.Boxes {
		b := &cfg.Boxes[i]
		if b.ID != id {
			continue
		}
		row(w, "Box", fmt.Sprintf("%s (%s)", b.Name, b.ID))
		if b.Role != "" {
			row(w, "Role", cfg.RoleLabel(b))
		}
		if dc, ok := cfg.Datacentres[b.Datacentre]; ok {
			row(w, "Datacentre", dc.Name)
		}
		return
	}
	row(w, "Box", id)
}

func row(b *strings.Builder, k, v string) { fmt.Fprintf(b, "%-15s %s\n", k+":", v) }

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

func footer(b *strings.Builder, cfg *config.Config) {
	if cfg.Site.StatusURL != "" {
		fmt.Fprintf(b, "\nStatus page: %s\n", cfg.Site.StatusURL)
	}
	fmt.Fprintf(b, "\n-- \nTocsin, the outage alarm of %s\n", cfg.Site.Name)
}
