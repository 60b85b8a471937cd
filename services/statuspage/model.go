package statuspage

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/publictext"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// page is the public state, built from what the other services keep and
// announce. It holds nothing the public must not see: servers are named by
// their public_name or "<box> <n>", never by their ids or addresses.
type page struct {
	cfg *config.Config
	now func() time.Time

	mu          sync.RWMutex
	servers     map[string]*server // by server id
	boxes       []*box             // in the config's order
	incidents   map[string]*publicIncident
	maintenance map[string]events.MaintenanceSet
	banner      events.Banner
	updated     time.Time // when the state last changed
	// The link to the monitoring system: live since when, or lost since
	// when.
	live       bool
	lostSince  time.Time
	heardSince time.Time
	// stale is what staff have been emailed about the latest loss of the
	// link (see stalealert.go), kept with the state.
	stale staleEpisode

	subs map[chan []byte]struct{}

	// version moves with every change, so that what was built from the
	// state can tell it is still current (see encodedDoc).
	version atomic.Uint64

	// What does not change while the page runs: the scrub of what staff
	// write, the key of the public ids, the roles' legend, and the style
	// sheet with the policy that allows it.
	scrub          *publictext.Scrubber
	idKey          []byte
	roles          []roleView
	style          string
	csp, exportCSP string
}

type server struct {
	id, name, component string
	box                 *box
	state               events.ServerState
	since               time.Time
}

type box struct {
	id, name, role, label, colour, component string
	position                                 int // in the API's component list; its servers follow
	servers                                  []*server
	state                                    events.BoxState
	since                                    time.Time
	// history is the changes the events told of, oldest first, for the
	// uptime bars; state and since fill in what they do not tell.
	history []boxChange
}

// boxChange is a box going from one state to another at a time; from is ""
// when not known.
type boxChange struct {
	at          time.Time
	from, state events.BoxState
}

// publicIncident is an incident as customers may see it: only those during
// which a box was down (an outage they felt), with staff's notes.
type publicIncident struct {
	incident.View
	public  bool
	updated time.Time
	// downBoxes are the boxes down at some time during it, in the order
	// they went down: the public hear of those, not of boxes only degraded,
	// and of those still once their servers start coming back.
	downBoxes []string
}

// componentID is a stable, opaque id for a server or box: the Statuspage
// API needs ids, and the config's are internal names.
func componentID(kind, id string) string {
	sum := sha256.Sum256([]byte(kind + ":" + id))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))[:12]
}

func newPage(cfg *config.Config, now func() time.Time) *page {
	p := &page{
		cfg: cfg, now: now,
		servers: map[string]*server{}, incidents: map[string]*publicIncident{},
		maintenance: map[string]events.MaintenanceSet{}, subs: map[chan []byte]struct{}{},
		scrub: publictext.New(cfg), idKey: randomKey(),
	}
	pos := 1
	seenRole := map[string]bool{}
	for i := range cfg.Boxes {
		b := &cfg.Boxes[i]
		bx := &box{id: b.ID, name: b.Name, role: b.Role, label: cfg.RoleLabel(b), component: componentID("box", b.ID), state: events.BoxOperational, position: pos}
		pos += 1 + len(b.Servers)
		if r, ok := cfg.Roles[b.Role]; ok {
			bx.colour = r.Colour
		}
		if bx.colour == "" {
			bx.colour = "#5d6d7e"
		}
		for j := range b.Servers {
			s := &b.Servers[j]
			name := s.PublicName
			if name == "" {
				name = fmt.Sprintf("%s %d", b.Name, j+1)
			}
			sv := &server{id: s.ID, name: name, component: componentID("server", s.ID), box: bx, state: events.StateUnknown}
			if !s.Serving() {
				sv.state = events.StateNotInService
			}
			bx.servers = append(bx.servers, sv)
			p.servers[s.ID] = sv
		}
		p.boxes = append(p.boxes, bx)
		if key := bx.label + bx.colour; bx.label != "" && !seenRole[key] {
			seenRole[key] = true
			p.roles = append(p.roles, roleView{Label: bx.label, Colour: bx.colour, Class: fmt.Sprintf("role-%d", len(p.roles))})
		}
	}
	p.style = styleOf(p.boxes, p.roles)
	p.csp, p.exportCSP = pagePolicy(p.style), exportPolicy(p.style)
	return p
}

// touch records a change and tells the live pages; call with mu held.
func (p *page) touch(delta []byte) {
	p.updated = p.now()
	p.version.Add(1)
	if delta == nil {
		return
	}
	for ch := range p.subs {
		select {
		case ch <- delta:
		default: // a client too slow to keep up reloads when it catches up
		}
	}
}

// setServer applies a server's state as the verifier recorded it.
func (p *page) setServer(id string, state events.ServerState, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.servers[id]
	if !ok || (s.state == state && s.since.Equal(since)) {
		return
	}
	s.state, s.since = state, since
	p.touch(deltaJSON("server", s.component, dotOf(s.state), s.since, p.now()))
}

// setBox applies a box's state as the verifier recorded it.
func (p *page) setBox(id string, state events.BoxState, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.boxes {
		if b.id == id && (b.state != state || !b.since.Equal(since)) {
			b.state, b.since = state, since
			p.touch(deltaJSON("box", b.component, string(state), since, p.now()))
		}
	}
}

// boxChanged adds a box state change to its history, for the uptime bars.
func (p *page) boxChanged(c *events.BoxStateChanged) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.boxes {
		if b.id != c.Box {
			continue
		}
		// In order; the same change again (events replayed after a
		// restart, over the saved state) is no change.
		if n := len(b.history); n == 0 || b.history[n-1].at.Before(c.Since) || (b.history[n-1].at.Equal(c.Since) && b.history[n-1].state != c.To) {
			b.history = append(b.history, boxChange{c.Since, c.From, c.To})
			b.pruneHistory(p.now())
			p.version.Add(1)
		}
	}
}

// pruneHistory forgets the changes from before the uptime bars, all but
// the last of them, which says the state the bars start in: a page that
// runs for years keeps no more than the bars' days of changes.
func (b *box) pruneHistory(now time.Time) {
	cutoff := now.Add(-uptimeDays * 24 * time.Hour)
	i := 0
	for i+1 < len(b.history) && !b.history[i+1].at.After(cutoff) {
		i++
	}
	b.history = slices.Delete(b.history, 0, i)
}

// incidentEvent merges an incident event; incidents become public once a
// box of theirs is down.
func (p *page) incidentEvent(ev events.Event) {
	id := incident.Of(ev)
	if id == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	inc := p.incidents[id]
	if inc == nil {
		inc = &publicIncident{}
		p.incidents[id] = inc
	}
	inc.Merge(ev, 0)
	inc.updated = ev.Time
	for _, b := range inc.Boxes {
		if inc.BoxStates[b].State == events.BoxDown && !slices.Contains(inc.downBoxes, b) {
			inc.downBoxes = append(inc.downBoxes, b)
		}
	}
	if len(inc.downBoxes) > 0 {
		inc.public = true
	}
	p.pruneIncidents()
	if inc.public {
		p.touch([]byte(`{"type":"incident"}`))
	}
}

// pruneIncidents forgets the incidents Tocsin resolved longer ago than the
// page's history reaches, which it shows no more: a page that runs for
// years keeps no more than its history's incidents. Call with mu held.
func (p *page) pruneIncidents() {
	cutoff := p.now().Add(-p.cfg.Statuspage.History.D())
	for id, inc := range p.incidents {
		if r := inc.Resolved; r != nil && r.Resolved.Before(cutoff) {
			delete(p.incidents, id)
			p.version.Add(1)
		}
	}
}

// setMaintenance applies a window as it was set, or its end (w nil). An
// internal window, which leaves every box available, changes nothing the
// public sees: the pages open everywhere are not told of it.
func (p *page) setMaintenance(id string, w *events.MaintenanceSet) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, had := p.maintenance[id]
	if w == nil {
		delete(p.maintenance, id)
	} else {
		p.maintenance[id] = *w
	}
	if (had && old.Public) || (w != nil && w.Public) {
		p.touch([]byte(`{"type":"maintenance"}`))
	}
}

func (p *page) setBanner(b events.Banner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.banner = b
	p.touch([]byte(`{"type":"banner"}`))
}

// setLive records whether the link to the monitoring system is up.
func (p *page) setLive(live bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if live == p.live {
		return
	}
	p.live = live
	if live {
		p.heardSince = p.now()
	} else {
		p.lostSince = p.now()
	}
	p.touch([]byte(fmt.Sprintf(`{"type":"link","live":%t}`, live)))
}

func (p *page) subscribe() chan []byte {
	ch := make(chan []byte, 64)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	return ch
}

func (p *page) unsubscribe(ch chan []byte) {
	p.mu.Lock()
	delete(p.subs, ch)
	p.mu.Unlock()
}

func deltaJSON(kind, component, status string, since, now time.Time) []byte {
	return fmt.Appendf(nil, `{"type":%q,"id":%q,"status":%q,"since":%q,"for":%q}`,
		kind, component, status, since.UTC().Format(time.RFC3339), onlineFor(since, now))
}

// dotOf is how a server shows: online (green), unavailable (red),
// maintenance, or not yet in service.
func dotOf(s events.ServerState) string {
	switch s {
	case events.StateDown:
		return "unavailable"
	case events.StateMaintenance:
		return "maintenance"
	case events.StateNotInService:
		return "not_in_service"
	case events.StateUnknown, "":
		return "unknown" // not checked yet: no colour it has not earned
	}
	// Suspect is still online for the public: nothing is confirmed.
	return "online"
}

// onlineFor says how long a state has lasted as people say it:
// "37 days", "4 hours", "12 minutes".
func onlineFor(since, now time.Time) string {
	if since.IsZero() {
		return ""
	}
	d := now.Sub(since)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d >= 2*time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d >= time.Minute:
		return plural(int(d/time.Minute), "minute")
	}
	return "less than a minute"
}

// publicIncidents is the incidents customers see, newest first.
func (p *page) publicIncidents() []*publicIncident {
	var out []*publicIncident
	for _, inc := range p.incidents {
		if inc.public {
			out = append(out, inc)
		}
	}
	slices.SortFunc(out, func(a, b *publicIncident) int { return b.Opened.Compare(a.Opened) })
	return out
}

// publicMaintenance is the maintenance windows customers are told of,
// soonest first.
func (p *page) publicMaintenance() []events.MaintenanceSet {
	var out []events.MaintenanceSet
	for _, k := range slices.Sorted(maps.Keys(p.maintenance)) {
		if w := p.maintenance[k]; w.Public {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b events.MaintenanceSet) int { return a.From.Compare(b.From) })
	return out
}

// uptimeDays is how many days the uptime bars show.
const uptimeDays = 90

// timeline is what is known of a box's states, oldest first: each holds
// from its time until the next one's, the last until now. The events tell
// most, and before the first of them the box was in the state it changed
// from, when that is known. The box's current state, since when it has
// been in it, fills in where they tell nothing: after the last event, or
// before the first one when that one does not say what it changed from.
func (b *box) timeline() []boxChange {
	var t []boxChange
	if len(b.history) > 0 && b.history[0].from != "" {
		t = append(t, boxChange{state: b.history[0].from}) // since ever
	}
	t = append(t, b.history...)
	if b.since.IsZero() {
		return t // its state not read yet
	}
	current := boxChange{at: b.since, state: b.state}
	switch {
	case len(t) == 0 || b.since.After(t[len(t)-1].at):
		t = append(t, current)
	case b.since.Before(t[0].at):
		t = slices.Insert(t, 0, current)
	}
	return t
}

// uptime is a box's availability on each of the last days days (UTC),
// oldest first: the share of the time known that it was not down, -1 for a
// day of which nothing is known.
func (b *box) uptime(days int, now time.Time) []float64 {
	const day = 24 * time.Hour
	t := b.timeline()
	start := now.UTC().Truncate(day).Add(-time.Duration(days-1) * day)
	out := make([]float64, days)
	for i := range out {
		dayStart := start.Add(time.Duration(i) * day)
		dayEnd := minTime(dayStart.Add(day), now)
		var known, down time.Duration
		for j, c := range t {
			until := now
			if j+1 < len(t) {
				until = t[j+1].at
			}
			if d := minTime(until, dayEnd).Sub(maxTime(c.at, dayStart)); d > 0 {
				known += d
				if c.state == events.BoxDown {
					down += d
				}
			}
		}
		out[i] = -1
		if known > 0 {
			out[i] = 1 - float64(down)/float64(known)
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
