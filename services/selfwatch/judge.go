package selfwatch

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// trouble is one thing found wrong in one look: what it is about, and the
// words a self alert about it says.
type trouble struct {
	Kind          events.SelfKind
	What          string
	Since         time.Time
	Title, Action string
	Detail        string
}

// key names a trouble across looks: its kind and what it is about.
func (t trouble) key() string { return string(t.Kind) + "/" + t.What }

// alert is what the watcher keeps of one trouble between looks: how many
// looks in a row found it, or found it gone, and the alert raised about
// it, if one was.
type alert struct {
	Trouble trouble            `json:"trouble"`
	Bad     int                `json:"bad,omitempty"`  // looks in a row that found it
	Good    int                `json:"good,omitempty"` // looks in a row that found it gone
	Raised  *events.SelfRaised `json:"raised,omitempty"`
}

// judge merges one look into the alerts kept: a trouble found raiseAfter
// looks in a row raises its alert, one gone clearAfter looks in a row
// clears it; between, nothing changes, so that an alert never flaps. It
// returns the events to publish, raised first, in a stable order.
func judge(alerts map[string]*alert, found []trouble, now time.Time, raiseAfter, clearAfter int) []events.Payload {
	seen := map[string]bool{}
	var out []events.Payload
	for _, t := range found {
		k := t.key()
		if seen[k] {
			continue
		}
		seen[k] = true
		a := alerts[k]
		if a == nil {
			a = &alert{}
			alerts[k] = a
		}
		a.Bad++
		a.Good = 0
		if a.Raised == nil {
			a.Trouble = t // the words of the latest look, until raised
		}
		if a.Raised == nil && a.Bad >= raiseAfter {
			a.Raised = &events.SelfRaised{
				Alert: alertID(t, now), Kind: t.Kind, What: t.What, Raised: now, Since: t.Since,
				Title: clip(t.Title, 300), Action: clip(t.Action, 500), Detail: clip(t.Detail, 1000),
			}
			out = append(out, a.Raised)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(alerts)) {
		if seen[k] {
			continue
		}
		a := alerts[k]
		a.Good++
		a.Bad = 0
		switch {
		case a.Raised == nil:
			delete(alerts, k) // a blip that never alerted
		case a.Good >= clearAfter:
			r := a.Raised
			out = append(out, &events.SelfCleared{Alert: r.Alert, Kind: r.Kind, What: r.What, Raised: r.Raised, Cleared: now, Title: r.Title})
			delete(alerts, k)
		}
	}
	return out
}

// alertID is a trouble's alert id for an episode that began at now: its
// kind, what it is about in a token's characters, and the millisecond.
// Looks are at least that far apart, so an episode raised again soon
// after one cleared never takes the cleared one's id, whose deliveries
// are already on record and would not be sent again.
func alertID(t trouble, now time.Time) string {
	var b strings.Builder
	for _, r := range t.What {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 30 {
			break
		}
	}
	kind := strings.ReplaceAll(string(t.Kind), "_", "")
	return fmt.Sprintf("%s-%s-%d", kind, b.String(), now.UnixMilli())
}

// clip cuts s to n bytes at most, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
