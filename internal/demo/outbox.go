package demo

import (
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
)

// outboxView shows, in a browser, everything the demo's stand-ins received:
// what would have gone out to the staff, the datacentre and the public.
type outboxView struct {
	mail *smtpserver.Server
	sms  *twilioapi.Server
	x    *xapi.Server
	fb   *graphapi.Server
}

type sent struct {
	At                time.Time
	Channel, To, Head string
	Body              string
}

var outboxPage = template.Must(template.New("outbox").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5"><title>Tocsin demo: outbox</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; padding: 0 1rem; color: #1b1f24; }
@media (prefers-color-scheme: dark) { body { background: #0d1117; color: #e6edf3; } }
article { border-left: 4px solid #8c959f; padding: 0.2rem 0.8rem; margin: 0.8rem 0; }
article.sms { border-color: #cf222e; } article.email { border-color: #0969da; } article.x, article.facebook { border-color: #8250df; }
h2 { font-size: 1rem; margin: 0; } .meta { color: #8c959f; font-size: 0.85rem; }
pre { white-space: pre-wrap; margin: 0.3rem 0; font-size: 0.85rem; }
</style></head><body>
<h1>What would have gone out</h1>
<p>Newest first; this page refreshes itself. The public status page is at <a href="{{.Page}}">{{.Page}}</a>.</p>
{{range .Sent}}<article class="{{.Channel}}"><h2>{{.Head}}</h2>
<div class="meta">{{.Channel}} to {{.To}}, {{.At.Format "15:04:05"}}</div><pre>{{.Body}}</pre></article>
{{else}}<p>Nothing yet: the first outage comes within a minute.</p>{{end}}
</body></html>
`))

func (o *outboxView) serve(page string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var all []sent
		for _, m := range o.mail.Messages() {
			at, _ := m.Header.Date()
			all = append(all, sent{at, "email", strings.Join(m.To, ", "), m.Subject, m.Text})
		}
		for _, m := range o.sms.Messages() {
			all = append(all, sent{m.Received, "sms", m.To, "SMS", m.Body})
		}
		for _, p := range o.x.Posts() {
			head := "Post on X"
			if p.ReplyTo != "" {
				head = "Reply on X"
			}
			all = append(all, sent{p.Received, "x", "followers", head, p.Text})
		}
		for _, p := range o.fb.Posts() {
			all = append(all, sent{p.Received, "facebook", "the page's followers", "Facebook post", p.Message})
		}
		for _, c := range o.fb.Comments() {
			all = append(all, sent{c.Received, "facebook", "the page's followers", "Facebook comment", c.Message})
		}
		slices.SortStableFunc(all, func(a, b sent) int { return b.At.Compare(a.At) })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = outboxPage.Execute(w, map[string]any{"Sent": all, "Page": page})
	})
}
