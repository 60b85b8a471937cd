package statuspage

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The Statuspage v2 public API, with its field names and status values, so
// that widgets and clients written for it work unchanged: boxes are
// component groups, servers their components.

type apiPage struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	URL       string `json:"url"`
	TimeZone  string `json:"time_zone"`
	UpdatedAt string `json:"updated_at"`
}

type apiStatus struct {
	Indicator   string `json:"indicator"` // none, minor, major, critical
	Description string `json:"description"`
}

type apiComponent struct {
	ID                 string   `json:"id"`
	Name               string   `json:"name"`
	Status             string   `json:"status"` // operational, degraded_performance, partial_outage, major_outage, under_maintenance
	CreatedAt          string   `json:"created_at"`
	UpdatedAt          string   `json:"updated_at"`
	Position           int      `json:"position"`
	Description        *string  `json:"description"`
	Showcase           bool     `json:"showcase"`
	StartDate          *string  `json:"start_date"`
	GroupID            *string  `json:"group_id"`
	PageID             string   `json:"page_id"`
	Group              bool     `json:"group"`
	OnlyShowIfDegraded bool     `json:"only_show_if_degraded"`
	Components         []string `json:"components,omitempty"`
}

type apiIncidentUpdate struct {
	ID                   string        `json:"id"`
	Status               string        `json:"status"`
	Body                 string        `json:"body"`
	IncidentID           string        `json:"incident_id"`
	CreatedAt            string        `json:"created_at"`
	UpdatedAt            string        `json:"updated_at"`
	DisplayAt            string        `json:"display_at"`
	AffectedComponents   []apiAffected `json:"affected_components"`
	DeliverNotifications bool          `json:"deliver_notifications"`
	CustomTweet          *string       `json:"custom_tweet"`
	TweetID              *string       `json:"tweet_id"`
}

type apiAffected struct {
	Code      string `json:"code"`
	Name      string `json:"name"`
	OldStatus string `json:"old_status"`
	NewStatus string `json:"new_status"`
}

type apiIncident struct {
	ID              string              `json:"id"`
	Name            string              `json:"name"`
	Status          string              `json:"status"` // investigating, identified, monitoring, resolved, postmortem; for maintenance scheduled, in_progress, verifying, completed
	CreatedAt       string              `json:"created_at"`
	UpdatedAt       string              `json:"updated_at"`
	MonitoringAt    *string             `json:"monitoring_at"`
	ResolvedAt      *string             `json:"resolved_at"`
	Impact          string              `json:"impact"` // none, minor, major, critical, maintenance
	Shortlink       string              `json:"shortlink"`
	StartedAt       string              `json:"started_at"`
	PageID          string              `json:"page_id"`
	IncidentUpdates []apiIncidentUpdate `json:"incident_updates"`
	Components      []apiComponent      `json:"components"`
	ScheduledFor    *string             `json:"scheduled_for,omitempty"`
	ScheduledUntil  *string             `json:"scheduled_until,omitempty"`
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func stampPtr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := stamp(t)
	return &s
}

// pageID is the page's id in the API: stable, from the site's name.
func (p *page) pageID() string { return componentID("page", p.cfg.Site.Name) }

func (p *page) apiPage() apiPage {
	return apiPage{ID: p.pageID(), Name: p.cfg.Site.Name, URL: p.cfg.Site.StatusURL, TimeZone: "Etc/UTC", UpdatedAt: stamp(p.updated)}
}

// serverStatus is a server as a Statuspage component.
func serverStatus(s *server) string {
	switch s.state {
	case events.StateDown:
		return "major_outage"
	case events.StateMaintenance:
		return "under_maintenance"
	case events.StateNotInService:
		return "partial_outage"
	}
	return "operational"
}

// boxStatus is a box as a Statuspage component group: degraded while some
// server is down and the service still available. It stays so although the
// page's status ignores degraded boxes: widgets that list components show
// each part as the HTML page shows it to anyone who looks (a server down
// is red there too, its box "Available"), and degraded_performance is
// Statuspage's value for a component that still works, not an outage.
// What announces trouble (the page's status, the incidents, and so the
// widgets' badges and banners) speaks only of boxes down.
func boxStatus(b *box) string {
	switch b.state {
	case events.BoxDown:
		return "major_outage"
	case events.BoxDegraded:
		return "degraded_performance"
	case events.BoxMaintenance:
		return "under_maintenance"
	}
	return "operational"
}

// epochStamp is when every component was created, as far as the API
// knows: Tocsin keeps no such date.
const epochStamp = "1970-01-01T00:00:00.000Z"

// updatedStamp is a component's updated_at: its state's since, or the epoch
// if it has none.
func updatedStamp(since time.Time) string {
	if !since.After(time.Unix(0, 0)) {
		return epochStamp
	}
	return stamp(since)
}

func (p *page) apiComponents() []apiComponent {
	var out []apiComponent
	pid := p.pageID()
	for _, b := range p.boxes {
		for i, s := range b.servers {
			gid := b.component
			out = append(out, apiComponent{
				ID: s.component, Name: s.name, Status: serverStatus(s), CreatedAt: epochStamp, UpdatedAt: updatedStamp(s.since),
				Position: b.position + 1 + i, Showcase: true, GroupID: &gid, PageID: pid,
			})
		}
		out = append(out, p.apiGroup(b, pid))
	}
	return out
}

// apiGroup is a box as a Statuspage component group.
func (p *page) apiGroup(b *box, pid string) apiComponent {
	desc := b.label
	group := apiComponent{
		ID: b.component, Name: b.name, Description: &desc, Status: boxStatus(b), CreatedAt: epochStamp, UpdatedAt: updatedStamp(b.since),
		Position: b.position, PageID: pid, Group: true,
	}
	for _, s := range b.servers {
		group.Components = append(group.Components, s.component)
	}
	return group
}

// apiGroups are the component groups of the boxes named, in the page's
// order.
func (p *page) apiGroups(ids []string) []apiComponent {
	out := []apiComponent{}
	pid := p.pageID()
	for _, b := range p.boxes {
		if slices.Contains(ids, b.id) {
			out = append(out, p.apiGroup(b, pid))
		}
	}
	return out
}

// overall is the page's status, as the Statuspage API words it. It speaks
// only of outages customers see: a degraded box still serves, so it leaves
// the page operational.
func (p *page) overall() apiStatus {
	down, maint := 0, 0
	for _, b := range p.boxes {
		switch b.state {
		case events.BoxDown:
			down++
		case events.BoxMaintenance:
			maint++
		}
	}
	switch {
	case down > 1:
		return apiStatus{"critical", "Major System Outage"}
	case down == 1:
		return apiStatus{"major", "Partial System Outage"}
	case maint > 0:
		return apiStatus{"maintenance", "Service Under Maintenance"}
	}
	return apiStatus{"none", "All Systems Operational"}
}

// apiIncident is an incident as the public see it, on the page, in the
// API and in the feed alike: known by an opaque id, with what staff wrote
// scrubbed of internal names and addresses.
func (p *page) apiIncident(inc *publicIncident) apiIncident {
	status := events.NoteInvestigating
	var updates []apiIncidentUpdate
	id := p.publicID("incident", inc.Incident)
	add := func(n int, st, body string, at time.Time) {
		updates = append(updates, apiIncidentUpdate{
			ID: p.publicID("update", inc.Incident+"/"+st+"/"+strconv.Itoa(n)), Status: st, Body: body, IncidentID: id,
			CreatedAt: stamp(at), UpdatedAt: stamp(at), DisplayAt: stamp(at), AffectedComponents: []apiAffected{},
		})
	}
	boxes := p.boxNames(inc.downBoxes)
	add(0, events.NoteInvestigating, "We are investigating a problem with "+boxes+".", inc.Opened)
	var monitoring time.Time
	for _, n := range inc.Notes {
		add(int(n.Seq), n.Status, p.scrub.Scrub(n.Message), n.At)
		status = n.Status
		if n.Status == events.NoteMonitoring && monitoring.IsZero() {
			monitoring = n.At
		}
	}
	if r := inc.Resolved; r != nil {
		status = events.NoteResolved
		add(1<<30, events.NoteResolved, "This incident has been resolved: "+boxes+" working normally again.", r.Resolved)
	}
	// Newest first, as Statuspage lists them.
	for i, j := 0, len(updates)-1; i < j; i, j = i+1, j-1 {
		updates[i], updates[j] = updates[j], updates[i]
	}
	impact := "minor"
	for _, s := range inc.BoxStates {
		if s.State == events.BoxDown {
			impact = "major"
		}
	}
	updated := inc.Opened
	if len(updates) > 0 {
		updated, _ = time.Parse("2006-01-02T15:04:05.000Z", updates[0].CreatedAt)
	}
	return apiIncident{
		ID: id, Name: publicTitle(boxes), Status: status,
		CreatedAt: stamp(inc.Opened), UpdatedAt: stamp(updated), MonitoringAt: stampPtr(monitoring), ResolvedAt: stampPtr(resolvedAt(&inc.View)),
		Impact: impact, Shortlink: p.cfg.Site.StatusURL, StartedAt: stamp(inc.Opened), PageID: p.pageID(),
		IncidentUpdates: updates, Components: p.apiGroups(inc.downBoxes),
	}
}

// resolvedAt is when an incident was resolved as the public were told it:
// when staff's updates turned to resolved and stayed so, or when Tocsin
// resolved it, whichever came first; zero while it is not resolved. As on
// Statuspage, an incident whose status is resolved has a resolved_at and
// is no longer unresolved, whoever resolved it.
func resolvedAt(v *incident.View) time.Time {
	var at time.Time
	for _, n := range v.Notes {
		switch {
		case n.Status != events.NoteResolved:
			at = time.Time{} // reopened, or never resolved
		case at.IsZero():
			at = n.At
		}
	}
	if r := v.Resolved; r != nil && (at.IsZero() || r.Resolved.Before(at)) {
		at = r.Resolved
	}
	return at
}

// publicTitle names an incident for the public: by its boxes, never its
// servers.
func publicTitle(boxes string) string { return "Problem with " + boxes }

func (p *page) boxNames(ids []string) string {
	var names []string
	for _, b := range p.boxes {
		if slices.Contains(ids, b.id) {
			names = append(names, b.name)
		}
	}
	switch len(names) {
	case 0:
		return "some services"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (p *page) apiMaintenance(w events.MaintenanceSet, now time.Time) apiIncident {
	status := "scheduled"
	switch {
	case !now.Before(w.Until):
		status = "completed"
	case !now.Before(w.From):
		status = "in_progress"
	}
	reason := p.scrub.Scrub(w.Reason)
	if reason == "" {
		reason = "Planned maintenance"
	}
	from, until := stamp(w.From), stamp(w.Until)
	id := p.publicID("maintenance", w.Maintenance) // its own id is what ends it
	return apiIncident{
		ID: id, Name: reason + ": " + p.boxNames(w.Boxes), Status: status,
		CreatedAt: stamp(w.From), UpdatedAt: stamp(w.From), Impact: "maintenance", Shortlink: p.cfg.Site.StatusURL,
		StartedAt: stamp(w.From), PageID: p.pageID(),
		IncidentUpdates: []apiIncidentUpdate{{
			ID: p.publicID("maintenance-update", w.Maintenance), Status: status, Body: reason + ". " + p.boxNames(w.Boxes) + " will be unavailable.",
			IncidentID: id, CreatedAt: stamp(w.From), UpdatedAt: stamp(w.From), DisplayAt: stamp(w.From), AffectedComponents: []apiAffected{},
		}},
		Components: p.apiGroups(w.Boxes), ScheduledFor: &from, ScheduledUntil: &until,
	}
}

func (s *Service) routesAPI(mux *http.ServeMux) {
	p := s.page
	unresolved := func() []apiIncident {
		out := []apiIncident{}
		for _, inc := range p.publicIncidents() {
			if a := p.apiIncident(inc); a.ResolvedAt == nil {
				out = append(out, a)
			}
		}
		return out
	}
	maint := func(now time.Time, keep func(status string) bool) []apiIncident {
		out := []apiIncident{}
		for _, w := range p.publicMaintenance() {
			m := p.apiMaintenance(w, now)
			if keep(m.Status) {
				out = append(out, m)
			}
		}
		return out
	}
	all := func(string) bool { return true }
	upcoming := func(st string) bool { return st == "scheduled" }
	active := func(st string) bool { return st == "in_progress" || st == "verifying" }
	mux.HandleFunc("GET /api/v2/summary.json", s.apiHandler(func(now time.Time) any {
		return map[string]any{"page": p.apiPage(), "components": p.apiComponents(), "incidents": unresolved(),
			"scheduled_maintenances": maint(now, func(st string) bool { return upcoming(st) || active(st) }), "status": p.overall()}
	}))
	mux.HandleFunc("GET /api/v2/status.json", s.apiHandler(func(time.Time) any {
		return map[string]any{"page": p.apiPage(), "status": p.overall()}
	}))
	mux.HandleFunc("GET /api/v2/components.json", s.apiHandler(func(time.Time) any {
		return map[string]any{"page": p.apiPage(), "components": p.apiComponents()}
	}))
	mux.HandleFunc("GET /api/v2/incidents.json", s.apiHandler(func(time.Time) any {
		out := []apiIncident{}
		for _, inc := range p.publicIncidents() {
			out = append(out, p.apiIncident(inc))
		}
		if len(out) > 50 {
			out = out[:50] // Statuspage lists the 50 most recent
		}
		return map[string]any{"page": p.apiPage(), "incidents": out}
	}))
	mux.HandleFunc("GET /api/v2/incidents/unresolved.json", s.apiHandler(func(time.Time) any {
		return map[string]any{"page": p.apiPage(), "incidents": unresolved()}
	}))
	mux.HandleFunc("GET /api/v2/scheduled-maintenances.json", s.apiHandler(func(now time.Time) any {
		return map[string]any{"page": p.apiPage(), "scheduled_maintenances": maint(now, all)}
	}))
	mux.HandleFunc("GET /api/v2/scheduled-maintenances/upcoming.json", s.apiHandler(func(now time.Time) any {
		return map[string]any{"page": p.apiPage(), "scheduled_maintenances": maint(now, upcoming)}
	}))
	mux.HandleFunc("GET /api/v2/scheduled-maintenances/active.json", s.apiHandler(func(now time.Time) any {
		return map[string]any{"page": p.apiPage(), "scheduled_maintenances": maint(now, active)}
	}))
}
