package statuspage

import (
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

//go:embed page.html.tmpl
var pageTemplate string

var tmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
}).Parse(pageTemplate))

// view is what the page template shows, taken under the page's lock.
type view struct {
	Site, StatusURL string
	Overall         apiStatus
	Boxes           []boxView
	Roles           []roleView
	Incidents       []incidentView
	Maintenance     []maintenanceView
	Banner          events.Banner
	Updated         time.Time
	Live            bool
	LostSince, Now  time.Time
	LostFor         string
	StaticExport    bool
	Style           template.CSS
	ExportCSP       string
}

type boxView struct {
	Component, Name, Label, State, StateText string
	Available                                bool
	Servers                                  []serverView
	Uptime                                   []dayView
	UptimePct                                string
}

type serverView struct {
	Component, Name, Dot, DotText, For string
}

type dayView struct {
	Date, Class, Title string
}

type roleView struct{ Label, Colour, Class string }

type incidentView struct {
	Title, Status string
	Opened        time.Time
	Resolved      bool
	Updates       []updateView
}

type updateView struct {
	Status, Body string
	At           time.Time
}

type maintenanceView struct {
	Title, Status string
	From, Until   time.Time
}

var dotText = map[string]string{"online": "Online", "unavailable": "Unavailable", "maintenance": "Maintenance", "not_in_service": "Not yet in service", "unknown": "Not checked yet"}

var boxText = map[events.BoxState]string{
	events.BoxOperational: "Available", events.BoxDegraded: "Available (some servers down, the service continues)",
	events.BoxDown: "Unavailable", events.BoxMaintenance: "Under maintenance",
}

// view takes what the page shows; call with the page's lock held.
func (p *page) view(now time.Time) view {
	v := view{Site: p.cfg.Site.Name, StatusURL: p.cfg.Site.StatusURL, Overall: p.overall(), Banner: p.banner,
		Updated: p.updated, Live: p.live, LostSince: p.lostSince, Now: now, Roles: p.roles,
		Style: styleCSS(p.style), ExportCSP: p.exportCSP}
	v.Banner.Message = p.scrub.Scrub(v.Banner.Message)
	if !p.live && !p.lostSince.IsZero() {
		v.LostFor = onlineFor(p.lostSince, now)
	}
	for _, b := range p.boxes {
		bv := boxView{Component: b.component, Name: b.name, Label: b.label, State: string(b.state),
			StateText: boxText[b.state], Available: b.state != events.BoxDown && b.state != events.BoxMaintenance}
		for _, s := range b.servers {
			d := dotOf(s.state)
			bv.Servers = append(bv.Servers, serverView{Component: s.component, Name: s.name, Dot: d, DotText: dotText[d], For: onlineFor(s.since, now)})
		}
		days := b.uptime(uptimeDays, now)
		var sum, n float64
		for i, u := range days {
			date := now.UTC().AddDate(0, 0, i-len(days)+1).Format("2 Jan")
			dv := dayView{Date: date, Class: "nodata", Title: date + ": no data"}
			switch {
			case u < 0:
			case u >= 0.9999:
				dv.Class, dv.Title = "up", fmt.Sprintf("%s: 100%% available", date)
			case u >= 0.99:
				dv.Class, dv.Title = "minor", fmt.Sprintf("%s: %.2f%% available", date, u*100)
			default:
				dv.Class, dv.Title = "major", fmt.Sprintf("%s: %.2f%% available", date, u*100)
			}
			if u >= 0 {
				sum, n = sum+u, n+1
			}
			bv.Uptime = append(bv.Uptime, dv)
		}
		if n > 0 {
			bv.UptimePct = fmt.Sprintf("%.2f%%", sum/n*100)
		}
		v.Boxes = append(v.Boxes, bv)
	}
	for _, inc := range p.publicIncidents() {
		resolved := resolvedAt(&inc.View)
		if !resolved.IsZero() && now.Sub(resolved) > p.cfg.Statuspage.History.D() {
			continue
		}
		a := p.apiIncident(inc)
		iv := incidentView{Title: a.Name, Status: a.Status, Opened: inc.Opened, Resolved: !resolved.IsZero()}
		for _, u := range a.IncidentUpdates {
			at, _ := time.Parse("2006-01-02T15:04:05.000Z", u.CreatedAt)
			iv.Updates = append(iv.Updates, updateView{Status: u.Status, Body: u.Body, At: at})
		}
		v.Incidents = append(v.Incidents, iv)
	}
	for _, w := range p.publicMaintenance() {
		m := p.apiMaintenance(w, now)
		if m.Status == "completed" {
			continue
		}
		v.Maintenance = append(v.Maintenance, maintenanceView{Title: m.Name, Status: strings.ReplaceAll(m.Status, "_", " "), From: w.From, Until: w.Until})
	}
	return v
}

func (s *Service) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	s.page.mu.RLock()
	v := s.page.view(s.now())
	s.page.mu.RUnlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	httpguard.SecureHeaders(w.Header(), s.page.csp)
	if err := tmpl.Execute(w, v); err != nil {
		s.log.Warn("page not rendered", "err", err)
	}
}

// serveEvents streams changes to the page as Server-Sent Events: a dot
// turns red within moments of the state change, without a reload.
//
// A stream lasts as long as the client likes, so it is bounded otherwise:
// streams are counted in all and per client, and refused with 503 beyond
// (the page works without them); the server's write timeout, which would
// cut every stream after a minute, gives way to a deadline per event,
// which cuts only a client that stops reading.
func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) {
	done, ok := s.streams.Open(httpguard.Key(s.proxies.Client(r)))
	if !ok {
		httpguard.Busy(w, streamRetryAfter, "too many live-update streams; the page works without them")
		return
	}
	defer done()
	rc := http.NewResponseController(w)
	send := func(text string) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.eventWrite)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := io.WriteString(w, text); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	ch := s.page.subscribe()
	defer s.page.unsubscribe(ch)
	if !send("retry: 3000\n: connected\n\n") {
		return
	}
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	for {
		var text string
		select {
		case <-r.Context().Done():
			return
		case d := <-ch:
			text = "data: " + string(d) + "\n\n"
		case <-keepalive.C:
			text = ": keepalive\n\n"
		}
		if !send(text) {
			return
		}
	}
}
