package escalator

import (
	"fmt"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/publictext"
	"github.com/tocsin-alarm/tocsin/internal/platform/span"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The public side says what is affected in the words of the status page:
// box names and roles, never a server, a hostname or an address.

// publicBoxes names the boxes of an incident as customers know them.
func publicBoxes(cfg *config.Config, boxes []string) string {
	var names []string
	for _, id := range boxes {
		b := cfg.Box(id)
		if b == nil {
			continue
		}
		name := b.Name
		if label := cfg.RoleLabel(b); label != "" && !strings.EqualFold(label, b.Name) {
			name += " (" + label + ")"
		}
		names = appendNew(names, name)
	}
	switch len(names) {
	case 0:
		return "some of our services"
	case 1:
		return names[0]
	}
	if len(names) > 4 {
		return fmt.Sprintf("%s and %d more services", strings.Join(names[:3], ", "), len(names)-3)
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func link(cfg *config.Config) string {
	if cfg.Site.StatusURL == "" {
		return ""
	}
	return " Updates: " + cfg.Site.StatusURL
}

// outageText is the post that tells the public of an extended outage.
func outageText(cfg *config.Config, st *state) string {
	return fmt.Sprintf("%s: we are working on a problem with %s. Some services may be unavailable.%s",
		cfg.Site.Name, publicBoxes(cfg, st.publicDown()), link(cfg))
}

// noteText passes a staff update on, with anything internal taken out.
func noteText(cfg *config.Config, n events.IncidentNote) string {
	return fmt.Sprintf("Update (%s): %s%s", n.Status, scrub(cfg, n.Message), link(cfg))
}

// resolvedText closes the public thread, saying how long customers were
// affected: what they want to know.
func resolvedText(cfg *config.Config, st *state) string {
	affected := ""
	if r := st.Resolved; r != nil && r.CustomersAffected() > 0 {
		affected = fmt.Sprintf(" Service was affected for %s.", span.Long(r.CustomersAffected()))
	}
	return fmt.Sprintf("%s: the problem with %s is resolved and all services are working normally.%s%s",
		cfg.Site.Name, publicBoxes(cfg, st.publicDown()), affected, link(cfg))
}

// bannerText is the message on the hosting web pages.
func bannerText(cfg *config.Config, boxes []string) string {
	return fmt.Sprintf("We are experiencing problems with %s. Please see our status page for updates.", publicBoxes(cfg, boxes))
}

// internalNames is everything in the config the public must never see:
// server ids and the hosts and addresses their checks reach.
func internalNames(cfg *config.Config) []string { return publictext.New(cfg).Names() }

// scrub takes every internal name and address out of a staff update before
// it goes public, as the status page does: a person in a hurry may write
// "mx1.internal is back".
func scrub(cfg *config.Config, text string) string { return publictext.New(cfg).Scrub(text) }
