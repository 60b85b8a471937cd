package statuspage

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// bannerScript is what the hosting web pages include. It never breaks or
// slows the host page: it runs after the page, asks for the banner with a
// short timeout, swallows every error, and shows a message only during a
// public outage; the visitor can dismiss it for the session.
const bannerScript = `(function () {
  "use strict";
  try {
    var src = (document.currentScript && document.currentScript.src) || "";
    var base = src ? src.replace(/\/banner\.js(\?.*)?$/, "") : "";
    var key = "tocsin-banner-dismissed";
    function show(b) {
      if (!b || !b.on || !document.body) return;
      try { if (sessionStorage.getItem(key) === b.since) return; } catch (e) {}
      var box = document.createElement("div");
      box.setAttribute("role", "status");
      box.id = "tocsin-banner";
      box.style.cssText = "position:relative;z-index:2147483647;margin:0;padding:10px 44px 10px 14px;" +
        "background:#9a1b1b;color:#fff;font:15px/1.4 system-ui,sans-serif;text-align:center";
      var text = document.createElement("span");
      text.textContent = b.message + " ";
      box.appendChild(text);
      if (b.link) {
        var a = document.createElement("a");
        a.href = b.link;
        a.textContent = "Status page";
        a.style.cssText = "color:#fff;text-decoration:underline;font-weight:600";
        box.appendChild(a);
      }
      var close = document.createElement("button");
      close.type = "button";
      close.setAttribute("aria-label", "Dismiss");
      close.textContent = "\u00d7";
      close.style.cssText = "position:absolute;right:8px;top:4px;background:none;border:0;color:#fff;font-size:22px;cursor:pointer";
      close.onclick = function () {
        box.parentNode && box.parentNode.removeChild(box);
        try { sessionStorage.setItem(key, b.since); } catch (e) {}
      };
      box.appendChild(close);
      document.body.insertBefore(box, document.body.firstChild);
    }
    function load() {
      var x = new XMLHttpRequest();
      x.open("GET", base + "/banner.json", true);
      x.timeout = 3000;
      x.onload = function () { try { if (x.status === 200) show(JSON.parse(x.responseText)); } catch (e) {} };
      x.send();
    }
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", load);
    else load();
  } catch (e) {}
})();
`

func (s *Service) serveBannerJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=300")
	fmt.Fprint(w, bannerScript)
}

// serveBannerJSON is the banner's state for the script: on or off, the
// message and the link, readable from any origin.
func (s *Service) serveBannerJSON(w http.ResponseWriter, r *http.Request) {
	s.page.mu.RLock()
	b := s.page.banner
	s.page.mu.RUnlock()
	since := ""
	if !b.Since.IsZero() {
		since = b.Since.UTC().Format(time.RFC3339)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	w.Header().Set("Cache-Control", "public, max-age=30")
	_ = json.NewEncoder(w).Encode(map[string]any{"on": b.On, "message": s.page.scrub.Scrub(b.Message), "link": b.Link, "since": since})
}

// The Atom feed of incidents and their updates.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Link    []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	ID        string   `xml:"id"`
	Title     string   `xml:"title"`
	Updated   string   `xml:"updated"`
	Published string   `xml:"published"`
	Link      atomLink `xml:"link"`
	Content   atomText `xml:"content"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

func (p *page) atom(base string) atomFeed {
	f := atomFeed{
		ID: "tag:tocsin," + p.pageID() + ":incidents", Title: p.cfg.Site.Name + " status: incidents",
		Updated: p.updated.UTC().Format(time.RFC3339), Author: atomAuthor{p.cfg.Site.Name},
		Link: []atomLink{{Rel: "self", Href: base + "/feed.atom"}, {Rel: "alternate", Href: base + "/"}},
	}
	if p.updated.IsZero() {
		f.Updated = time.Unix(0, 0).UTC().Format(time.RFC3339)
	}
	for _, inc := range p.publicIncidents() {
		a := p.apiIncident(inc)
		var body strings.Builder
		for _, u := range a.IncidentUpdates {
			fmt.Fprintf(&body, "%s — %s: %s\n", u.CreatedAt, u.Status, u.Body)
		}
		f.Entries = append(f.Entries, atomEntry{
			ID: "tag:tocsin," + p.pageID() + ":incident:" + a.ID, Title: a.Name + " (" + a.Status + ")",
			Updated: rfc3339(a.UpdatedAt), Published: rfc3339(a.CreatedAt), Link: atomLink{Rel: "alternate", Href: base + "/"},
			Content: atomText{Type: "text", Body: body.String()},
		})
	}
	return f
}

func rfc3339(apiStamp string) string {
	t, err := time.Parse("2006-01-02T15:04:05.000Z", apiStamp)
	if err != nil {
		return apiStamp
	}
	return t.Format(time.RFC3339)
}

func (s *Service) serveAtom(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimRight(s.cfg.Site.StatusURL, "/")
	if base == "" {
		base = "http://" + r.Host
	}
	s.page.mu.RLock()
	f := s.page.atom(base)
	s.page.mu.RUnlock()
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	fmt.Fprint(w, xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	_ = enc.Encode(f)
}
