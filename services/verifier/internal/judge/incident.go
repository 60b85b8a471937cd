package judge

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Incident is one outage as the incidents bucket keeps it: every server that
// joined it, and the state of each box it touched. Servers of one
// datacentre confirmed down close together join one incident, so that a
// datacentre losing power pages once, not once per box.
type Incident struct {
	ID         string    `json:"id"`
	Datacentre string    `json:"datacentre,omitempty"`
	Title      string    `json:"title"`
	Opened     time.Time `json:"opened"`
	LastAdded  time.Time `json:"last_added"`
	Resolved   time.Time `json:"resolved,omitzero"`
	// Seq counts the updates published; each update's id is derived from it.
	Seq     int64                       `json:"seq"`
	Members map[string]Member           `json:"members"`
	Boxes   map[string]events.BoxStatus `json:"boxes"`
	// Worst is the worst severity the incident reached.
	Worst events.Severity `json:"worst,omitempty"`
	// DownSince is when a box of the incident last began to serve nobody
	// while none did, zero while every box serves; Affected adds up the
	// earlier such spans. Together: how long customers were hit.
	DownSince time.Time     `json:"down_since,omitzero"`
	Affected  time.Duration `json:"affected,omitempty"`
}

// Member is one server of an incident.
type Member struct {
	Box string `json:"box"`
	// Outage is the server's own outage id: a server joins once per outage,
	// however often its confirmation is judged again.
	Outage    string    `json:"outage"`
	Since     time.Time `json:"since"`
	Recovered time.Time `json:"recovered,omitzero"`
	Flapping  bool      `json:"flapping,omitempty"` // staff were told
	// Withdrawn: it left by being taken out of service, not by recovering.
	Withdrawn bool `json:"withdrawn,omitempty"`
}

// Naming gives incidents titles people can read.
type Naming struct {
	BoxName    func(box string) string
	Datacentre string // the datacentre's name, "" for none
}

// Join adds a server confirmed down at at and returns the event to publish:
// opened for the first server, updated for the next; nil if the server is
// in the incident for this outage already. flapping says the server was
// marked flapping as it went down.
func (inc *Incident) Join(a events.AffectedServer, outage string, at time.Time, flapping bool, n Naming) events.Payload {
	if m, ok := inc.Members[a.Server]; ok && m.Outage == outage {
		return nil
	}
	first := len(inc.Members) == 0
	if inc.Members == nil {
		inc.Members, inc.Boxes = map[string]Member{}, map[string]events.BoxStatus{}
	}
	inc.Members[a.Server] = Member{Box: a.Box, Outage: outage, Since: a.Since, Flapping: flapping}
	inc.LastAdded = at
	boxes := inc.setBox(events.BoxStatus{Box: a.Box, State: a.BoxState, Up: a.StillUp}, at)
	inc.Title = inc.title(n)
	if first {
		inc.Opened = at
		return &events.IncidentOpened{
			Incident: inc.ID, Opened: at, Title: inc.Title, Datacentre: inc.Datacentre,
			Servers: []events.AffectedServer{a}, Severity: inc.Severity(), Flapping: flapping,
		}
	}
	inc.Seq++
	u := &events.IncidentUpdated{
		Incident: inc.ID, Seq: inc.Seq, At: at, Opened: inc.Opened, Title: inc.Title,
		Added: []events.AffectedServer{a}, Boxes: boxes, Down: inc.Down(), Severity: inc.Severity(),
	}
	if flapping {
		u.Flapping = []string{a.Server}
	}
	return u
}

// Leave marks a server back at at, or taken out of service (withdrawn),
// with its box's state now, and returns the event to publish: resolved
// when it was the last one down, updated otherwise; nil if it had left
// already or never joined.
func (inc *Incident) Leave(server string, at time.Time, box events.BoxStatus, withdrawn bool) events.Payload {
	m, ok := inc.Members[server]
	if !ok || !m.Recovered.IsZero() || !inc.Resolved.IsZero() {
		return nil
	}
	m.Recovered, m.Withdrawn = at, withdrawn
	inc.Members[server] = m
	boxes := inc.setBox(box, at)
	down := inc.Down()
	if len(down) == 0 {
		inc.Resolved = at
		if !inc.DownSince.IsZero() {
			inc.Affected += at.Sub(inc.DownSince)
			inc.DownSince = time.Time{}
		}
		var gone []string
		for _, id := range slices.Sorted(maps.Keys(inc.Members)) {
			if inc.Members[id].Withdrawn {
				gone = append(gone, id)
			}
		}
		return &events.IncidentResolved{
			Incident: inc.ID, Opened: inc.Opened, Resolved: at, Title: inc.Title,
			Servers: slices.Sorted(maps.Keys(inc.Members)), Severity: inc.Worst, Withdrawn: gone,
			CustomersAffectedMS: inc.Affected.Milliseconds(),
		}
	}
	inc.Seq++
	u := &events.IncidentUpdated{
		Incident: inc.ID, Seq: inc.Seq, At: at, Opened: inc.Opened, Title: inc.Title,
		Boxes: boxes, Down: down, Severity: inc.Severity(),
	}
	if withdrawn {
		u.Withdrawn = []string{server}
	} else {
		u.Recovered = []string{server}
	}
	return u
}

// BoxChanged records a new state of one of the incident's boxes, judged
// from all its servers (one of them may have failed or come back outside
// the incident), and returns the update that tells of it; nil if the
// incident is over, does not hold the box, or knew the state already.
func (inc *Incident) BoxChanged(b events.BoxStatus, at time.Time) events.Payload {
	if _, ok := inc.Boxes[b.Box]; !ok || !inc.Resolved.IsZero() {
		return nil
	}
	boxes := inc.setBox(b, at)
	if boxes == nil {
		return nil
	}
	inc.Seq++
	return &events.IncidentUpdated{
		Incident: inc.ID, Seq: inc.Seq, At: at, Opened: inc.Opened, Title: inc.Title,
		Boxes: boxes, Down: inc.Down(), Severity: inc.Severity(),
	}
}

// Severity is the incident's severity now: an outage while a box of it
// serves nobody, degraded otherwise.
func (inc *Incident) Severity() events.Severity {
	for _, b := range inc.Boxes {
		if b.State == events.BoxDown {
			return events.SeverityOutage
		}
	}
	return events.SeverityDegraded
}

// Flap marks a server of the incident flapping at at and returns the
// update that tells staff so, once; nil if they were told already, or the
// server is not in the open incident.
func (inc *Incident) Flap(server string, at time.Time) events.Payload {
	m, ok := inc.Members[server]
	if !ok || m.Flapping || !inc.Resolved.IsZero() {
		return nil
	}
	m.Flapping = true
	inc.Members[server] = m
	inc.Seq++
	return &events.IncidentUpdated{
		Incident: inc.ID, Seq: inc.Seq, At: at, Opened: inc.Opened, Title: inc.Title,
		Down: inc.Down(), Flapping: []string{server}, Severity: inc.Severity(),
	}
}

// Down is the servers of the incident still down, in order.
func (inc *Incident) Down() []string {
	down := []string{}
	for _, id := range slices.Sorted(maps.Keys(inc.Members)) {
		if inc.Members[id].Recovered.IsZero() {
			down = append(down, id)
		}
	}
	return down
}

// setBox records a box's state at at and returns it as a change, or nil
// when the state is the one known already. It keeps the clock of how long
// customers were hit, and the worst severity reached.
func (inc *Incident) setBox(b events.BoxStatus, at time.Time) []events.BoxStatus {
	if b.State == "" {
		return nil
	}
	old, ok := inc.Boxes[b.Box]
	inc.Boxes[b.Box] = b
	sev := inc.Severity()
	if sev.Worse(inc.Worst) {
		inc.Worst = sev
	}
	switch {
	case sev == events.SeverityOutage && inc.DownSince.IsZero():
		inc.DownSince = at
	case sev != events.SeverityOutage && !inc.DownSince.IsZero():
		inc.Affected += at.Sub(inc.DownSince)
		inc.DownSince = time.Time{}
	}
	if ok && old.State == b.State {
		return nil
	}
	return []events.BoxStatus{b}
}

// title says how big the outage is: every server that joined counts, so the
// title stays as it was at its worst.
func (inc *Incident) title(n Naming) string {
	boxes := map[string]bool{}
	var only string
	for id, m := range inc.Members {
		boxes[m.Box], only = true, id
	}
	switch {
	case len(inc.Members) == 1:
		return ServerTitle(only, n.BoxName(inc.Members[only].Box))
	case len(boxes) == 1:
		return fmt.Sprintf("%d servers of %s are down", len(inc.Members), n.BoxName(inc.Members[only].Box))
	case n.Datacentre != "":
		return fmt.Sprintf("%d servers down in %d boxes at %s", len(inc.Members), len(boxes), n.Datacentre)
	}
	return fmt.Sprintf("%d servers down in %d boxes", len(inc.Members), len(boxes))
}

// ServerTitle is the title of an incident of one server.
func ServerTitle(server, boxName string) string {
	return fmt.Sprintf("%s (%s) is down", server, boxName)
}

// Open is the incidents open in one datacentre, as the incidents bucket
// keeps them for every reader: what a server confirmed down there may join.
type Open struct {
	events.OpenIncidents
}

// Choose picks the incident a server of box confirmed down at at joins: the
// one its box is in already; else the one a server last joined within
// window of at; else none, and the server opens a new one.
func (o *Open) Choose(box string, at time.Time, window time.Duration) string {
	best := -1
	for i, inc := range o.Incidents {
		if slices.Contains(inc.Boxes, box) {
			return inc.ID
		}
		if d := at.Sub(inc.LastAdded); d <= window && d >= -window && (best < 0 || inc.LastAdded.After(o.Incidents[best].LastAdded)) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return o.Incidents[best].ID
}

// Add records that a server of box joined incident id at at.
func (o *Open) Add(id, box string, at time.Time) {
	for i := range o.Incidents {
		inc := &o.Incidents[i]
		if inc.ID != id {
			continue
		}
		if !slices.Contains(inc.Boxes, box) {
			inc.Boxes = append(inc.Boxes, box)
		}
		if at.After(inc.LastAdded) {
			inc.LastAdded = at
		}
		return
	}
	o.Incidents = append(o.Incidents, events.OpenIncident{ID: id, Boxes: []string{box}, LastAdded: at})
}

// Remove forgets a resolved incident, and reports whether it was there.
func (o *Open) Remove(id string) bool {
	n := len(o.Incidents)
	o.Incidents = slices.DeleteFunc(o.Incidents, func(inc events.OpenIncident) bool { return inc.ID == id })
	return len(o.Incidents) != n
}
