// Package demo is what `tocsin demo` shows a newcomer: a hosting
// provider's fleet on loopback, stand-ins for Twilio, a mail server, X and
// Facebook that keep what they are sent, a config made from an embedded
// template for them, and the narration of what happens as servers,
// routes and whole boxes fail.
package demo

import (
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
)

// box is one box of the demo fleet.
type box struct {
	ID, Name, Role, Label, Colour string
	banner                        string // a format for the servers' banner; "" for HTTP
	names                         []string
	Servers                       []*Server
}

// fleet is the demo's boxes: the roles of a web and email hosting provider.
func fleet() []*box {
	return []*box{
		{ID: "mx", Name: "Incoming mail", Role: "mx", Label: "Incoming mail (MX)", Colour: "#2e86de", banner: "220 %s.demo ESMTP", names: []string{"mx1", "mx2"}},
		{ID: "av", Name: "AV and greylisting", Role: "av", Label: "AV/GreyListing", Colour: "#8e44ad", banner: "220 %s.demo ESMTP", names: []string{"av1", "av2"}},
		{ID: "backup-mx", Name: "Backup MX", Role: "backupmx", Label: "Backup MX", Colour: "#16a085", banner: "220 %s.demo ESMTP", names: []string{"bmx1", "bmx2"}},
		{ID: "web", Name: "Web and webmail", Role: "web", Label: "Web Service", Colour: "#27ae60", names: []string{"web1", "web2"}},
		{ID: "db", Name: "Databases", Role: "db", Label: "Database Service", Colour: "#d35400", banner: "demo database %s", names: []string{"db1", "db2"}},
		{ID: "ftp", Name: "FTP", Role: "ftp", Label: "FTP Service", Colour: "#7f8c8d", banner: "220 %s.demo FTP ready", names: []string{"ftp1"}},
		{ID: "hosting", Name: "Hosting", Role: "hosting", Label: "Hosting Service", Colour: "#c0392b", names: []string{"host1", "host2", "host3"}},
	}
}

// Sources are the addresses the demo's three locations check from, in the
// order of the config's locations: one can lose its route to a server
// while the others still reach it.
var Sources = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

// The demo's accounts, known only to their stand-ins.
const (
	twilioSID   = "AC00000000000000000000000000000de0"
	twilioToken = "demotoken"
	fbToken     = "demopagetoken"
)

var xCredentials = xapi.Credentials{ConsumerKey: "demokey", ConsumerSecret: "demosecret", Token: "demotoken", TokenSecret: "demotokensecret"}

//go:embed demo.yaml.tmpl
var configTemplate string

var configText = template.Must(template.New("demo.yaml").Funcs(template.FuncMap{"quote": strconv.Quote}).Parse(configTemplate))

// Options shape a demo.
type Options struct {
	Page     string        // the status page's URL
	Interval time.Duration // how often each server is checked
	Every    time.Duration // how often something fails
	Outage   time.Duration // how long a failure lasts
	Out      io.Writer     // where the demo tells what happens
}

// World is a running demo: its fleet, its stand-ins and its config.
type World struct {
	Config *config.Config
	Mail   *smtpserver.Server
	SMS    *twilioapi.Server
	X      *xapi.Server
	FB     *graphapi.Server
	opts   Options
	boxes  []*box
	fleet  []*Server
	out    io.Writer // Options.Out, one line at a time
	// PushListener is where the push service takes the nightly backup's
	// reports: a port the demo chose, handed to the service.
	PushListener net.Listener
}

// New starts the fleet and the stand-ins, and makes the config that
// watches them. Close stops them all.
func New(opts Options) (w *World, err error) {
	w = &World{opts: opts, boxes: fleet(), out: &lockedWriter{w: opts.Out}}
	started := w // w is nil once an error is returned
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	if w.Mail, err = smtpserver.New(smtpserver.Options{}); err != nil {
		return nil, err
	}
	if w.SMS, err = twilioapi.New(twilioSID, twilioToken); err != nil {
		return nil, err
	}
	if w.X, err = xapi.New(xCredentials); err != nil {
		return nil, err
	}
	if w.FB, err = graphapi.New("1000", fbToken); err != nil {
		return nil, err
	}
	for _, b := range w.boxes {
		for _, name := range b.names {
			banner := ""
			if b.banner != "" {
				banner = fmt.Sprintf(b.banner, name)
			}
			s, err := NewServer(name, banner)
			if err != nil {
				return nil, err
			}
			b.Servers = append(b.Servers, s)
			w.fleet = append(w.fleet, s)
		}
	}
	if w.PushListener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	var text strings.Builder
	err = configText.Execute(&text, map[string]any{
		"PushEvery": pushEvery(opts), "PushGrace": opts.Interval, "PushListen": w.PushListener.Addr().String(),
		"Page": opts.Page, "Interval": opts.Interval, "Timeout": min(2*time.Second, opts.Interval/2),
		"DatacentreAfter": opts.Outage / 4, "SocialAfter": opts.Outage / 2,
		"SMTPPort": w.Mail.Port, "TwilioURL": w.SMS.URL, "XURL": w.X.URL, "FacebookURL": w.FB.URL,
		"Boxes": w.boxes,
	})
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	env := map[string]string{
		"TWILIO_ACCOUNT_SID": twilioSID, "TWILIO_AUTH_TOKEN": twilioToken, "FACEBOOK_TOKEN": fbToken,
		"DEMO_PUSH_TOKEN": pushToken,
		"X_KEY":           xCredentials.ConsumerKey, "X_SECRET": xCredentials.ConsumerSecret, "X_TOKEN": xCredentials.Token, "X_TOKEN_SECRET": xCredentials.TokenSecret,
	}
	w.Config, err = config.Parse("demo.yaml", []byte(text.String()), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return w, nil
}

// Close stops the fleet and the stand-ins.
func (w *World) Close() {
	for _, s := range w.fleet {
		s.Off()
	}
	if w.Mail != nil {
		w.Mail.Close()
	}
	if w.SMS != nil {
		w.SMS.Close()
	}
	if w.X != nil {
		w.X.Close()
	}
	if w.FB != nil {
		w.FB.Close()
	}
	if w.PushListener != nil {
		w.PushListener.Close()
	}
}

// Outbox is a page showing everything the stand-ins received: what would
// have gone out to the staff, the datacentre and the public.
func (w *World) Outbox() http.Handler {
	return (&outboxView{mail: w.Mail, sms: w.SMS, x: w.X, fb: w.FB}).serve(w.opts.Page)
}

// Where is where a newcomer finds what the demo runs.
type Where struct {
	Outbox string // the outbox page's URL
	Admin  string // host:port of metrics and health
	Data   string // the data directory, for the other commands' --data
}

// Intro tells a newcomer what runs, where to look, and what will happen.
func (w *World) Intro(at Where) {
	out, cfg, o := w.out, w.Config, w.opts
	data := at.Data
	if strings.ContainsAny(data, " \t\n'\"\\$`") {
		data = "'" + strings.ReplaceAll(data, "'", `'\''`) + "'" // for the shell
	}
	natsFlag := " --data " + data
	fmt.Fprintf(out, "Tocsin demo: %d servers in %d boxes on loopback, checked every %s from %s in turn.\n", len(w.fleet), len(w.boxes), o.Interval, strings.Join(cfg.Locations, ", "))
	fmt.Fprintf(out, "The public status page: %s (its API at %sapi/v2/summary.json)\n", o.Page, o.Page)
	fmt.Fprintf(out, "What would have gone out (SMS, email, tickets, posts): %s\n", at.Outbox)
	fmt.Fprintf(out, "Metrics and health: http://%[1]s/metrics, http://%[1]s/readyz\n", at.Admin)
	fmt.Fprintf(out, "From another terminal, as the on-call engineer: tocsin status%[1]s; tocsin ack%[1]s CODE, with the code an SMS gives;\n", natsFlag)
	fmt.Fprintf(out, "tocsin incident update%s INCIDENT --status identified --message \"…\" to tell the status page's readers.\n", natsFlag)
	fmt.Fprintf(out, "Every %s, for %s, one server stops answering (watch it be suspected, confirmed from elsewhere, paged about and resolved),\n", o.Every, o.Outage)
	fmt.Fprintf(out, "or one location loses its route to a server (watch the others clear it as a false alarm, and nobody be told),\n")
	fmt.Fprintf(out, "or a whole box goes down (an outage customers see, taken to the datacentre and the public).\n")
	fmt.Fprintf(out, "The person on call gets an SMS (to a stand-in for Twilio on loopback) and everyone an email (to a mail server on\n")
	fmt.Fprintf(out, "loopback, %s). An outage still open after %s is emailed to the datacentre, and after %s posted to X and\n", w.Mail.Addr, cfg.Escalation.DatacentreAfter, cfg.Escalation.SocialAfter)
	fmt.Fprintf(out, "Facebook (stand-ins on loopback) with a banner raised for the hosting pages. All are shown here. Ctrl-C to stop.\n\n")
}
