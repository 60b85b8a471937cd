package notifier

import (
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// recipient is one person to tell and how.
type recipient struct {
	Staff    config.Staff
	OnCall   bool
	Channels []string
}

// recipients is who hears of an incident of severity sev touching boxes at
// t: the person on call, by the on-call channels of the severity, and
// everyone else routed to one of the boxes, by the others' channels.
// Without a rotation everyone routed is on call. Nobody routed at all
// would leave an outage untold, so then everyone is.
func (n *Notifier) recipients(boxes []string, t time.Time, sev events.Severity) []recipient {
	cfg := n.cfg
	route := cfg.Notify.Route(sev)
	onCall := cfg.OnCallAt(t)
	var out []recipient
	for _, s := range cfg.Staff {
		r := recipient{Staff: s}
		switch {
		case s.Name == onCall || onCall == "" && routed(cfg, s, boxes):
			r.OnCall, r.Channels = true, n.reachable(s, route.OnCall)
		case routed(cfg, s, boxes):
			r.Channels = n.reachable(s, route.Others)
		}
		if len(r.Channels) > 0 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		for _, s := range cfg.Staff {
			if ch := n.reachable(s, route.OnCall); len(ch) > 0 {
				out = append(out, recipient{Staff: s, OnCall: true, Channels: ch})
			}
		}
	}
	return out
}

// primary is the channel that must carry a page for the person to count
// as told: the first that wakes them, else their first.
func (n *Notifier) primary(r recipient) string {
	if i := slices.IndexFunc(r.Channels, n.wakes); i >= 0 {
		return r.Channels[i]
	}
	if len(r.Channels) == 0 {
		return ""
	}
	return r.Channels[0]
}

// routed reports whether a person hears of incidents touching boxes: one who
// names no boxes and no roles hears of every incident.
func routed(cfg *config.Config, s config.Staff, boxes []string) bool {
	if len(s.Boxes) == 0 && len(s.Roles) == 0 {
		return true
	}
	for _, id := range boxes {
		if slices.Contains(s.Boxes, id) {
			return true
		}
		if b := cfg.Box(id); b != nil && slices.Contains(s.Roles, b.Role) {
			return true
		}
	}
	return false
}

// updateChannels is how a person hears of updates: by the channels that
// do not wake them (email) where they have one, for an SMS per update
// would wake the person on call again and again; by their channels
// otherwise.
func (n *Notifier) updateChannels(r recipient) []string {
	if quiet := slices.DeleteFunc(slices.Clone(r.Channels), n.wakes); len(quiet) > 0 {
		return quiet
	}
	return r.Channels
}
