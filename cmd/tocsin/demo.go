package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// demoBoxes is the demo fleet: the roles of a web and email hosting provider.
var demoBoxes = []struct {
	id, name, role, label, colour, banner string
	servers                               []string
}{
	{"mx", "Incoming mail", "mx", "Incoming mail (MX)", "#2e86de", "220 %s.demo ESMTP", []string{"mx1", "mx2"}},
	{"av", "AV and greylisting", "av", "AV/GreyListing", "#8e44ad", "220 %s.demo ESMTP", []string{"av1", "av2"}},
	{"backup-mx", "Backup MX", "backupmx", "Backup MX", "#16a085", "220 %s.demo ESMTP", []string{"bmx1", "bmx2"}},
	{"web", "Web and webmail", "web", "Web Service", "#27ae60", "", []string{"web1", "web2"}},
	{"db", "Databases", "db", "Database Service", "#d35400", "demo database %s", []string{"db1", "db2"}},
	{"ftp", "FTP", "ftp", "FTP Service", "#7f8c8d", "220 %s.demo FTP ready", []string{"ftp1"}},
	{"hosting", "Hosting", "hosting", "Hosting Service", "#c0392b", "", []string{"host1", "host2", "host3"}},
}

// demoSources are the addresses the demo's three locations check from.
var demoSources = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

type demoFlags struct {
	data, logLevel, listen  string
	interval, every, outage time.Duration
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f demoFlags
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.data, "data", "", "where the embedded JetStream server keeps its streams (default: a temporary directory)")
	fs.DurationVar(&f.interval, "interval", 5*time.Second, "how often each demo server is checked")
	fs.DurationVar(&f.every, "outage-every", 40*time.Second, "how often a demo server fails")
	fs.DurationVar(&f.outage, "outage-for", 20*time.Second, "how long a failure lasts")
	fs.StringVar(&f.logLevel, "log-level", "error", "debug, info, warn or error")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "where the status page listens")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := runDemo(ctx, f, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "tocsin demo: %v\n", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, f demoFlags, stdout, stderr io.Writer) error {
	log, err := newLogger(stderr, "text", f.logLevel)
	if err != nil {
		return err
	}
	if f.data == "" {
		dir, err := os.MkdirTemp("", "tocsin-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f.data = dir
	}
	outbox, err := smtpserver.New(smtpserver.Options{})
	if err != nil {
		return err
	}
	defer outbox.Close()
	// The status page, on the port asked for.
	pageLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("status page: %w (try --listen 127.0.0.1:0)", err)
	}
	pageURL := "http://" + pageLn.Addr().String() + "/"
	// SMS go to a stand-in for Twilio on loopback, which shows them here.
	sms, err := twilioapi.New(demoTwilioSID, demoTwilioToken)
	if err != nil {
		return err
	}
	defer sms.Close()
	// Posts go to stand-ins for X and Facebook.
	xs, err := xapi.New(demoX)
	if err != nil {
		return err
	}
	defer xs.Close()
	fb, err := graphapi.New("1000", demoFBToken)
	if err != nil {
		return err
	}
	defer fb.Close()

	var fleet []*loopbackServer
	defer func() {
		for _, s := range fleet {
			s.Off()
		}
	}()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, `site: {name: Demo Hosting, status_url: %q}
checks: {interval: %s, timeout: %s, recover_after: 2}
locations: [lon1, ams1, nyc1]
datacentres: {dc1: {name: Demo DC, email: noc@dc.demo.invalid}}
staff:
  - {name: Alice, email: alice@demo.invalid, phone: "+447700900001"}
  - {name: Bob, email: bob@demo.invalid, phone: "+447700900002"}
oncall: {rotation: [Alice, Bob], handover: 2026-01-05T09:00:00Z}
escalation: {datacentre_after: %s, social_after: %s}
providers:
  smtp: {host: 127.0.0.1, port: %d, from: "Tocsin <alarm@demo.invalid>", tls: none}
  twilio: {from: "+447700900000", account_sid_env: TWILIO_ACCOUNT_SID, auth_token_env: TWILIO_AUTH_TOKEN, api_url: %q}
  x: {consumer_key_env: X_KEY, consumer_secret_env: X_SECRET, token_env: X_TOKEN, token_secret_env: X_TOKEN_SECRET, api_url: %q}
  facebook: {page_id: "1000", token_env: FACEBOOK_TOKEN, api_url: %q}
roles:
`, pageURL, f.interval, min(2*time.Second, f.interval/2), f.outage/4, f.outage/2, outbox.Port, sms.URL, xs.URL, fb.URL)
	for _, b := range demoBoxes {
		fmt.Fprintf(&yaml, "  %s: {label: %q, colour: %q}\n", b.role, b.label, b.colour)
	}
	yaml.WriteString("boxes:\n")
	for _, b := range demoBoxes {
		fmt.Fprintf(&yaml, "  - {id: %s, name: %q, role: %s, datacentre: dc1, servers: [", b.id, b.name, b.role)
		for i, name := range b.servers {
			banner := ""
			if b.banner != "" {
				banner = fmt.Sprintf(b.banner, name)
			}
			s, err := newLoopbackServer(name, banner)
			if err != nil {
				return err
			}
			fleet = append(fleet, s)
			if i > 0 {
				yaml.WriteString(", ")
			}
			fmt.Fprintf(&yaml, "{id: %s, check: %q}", name, s.Check())
		}
		yaml.WriteString("]}\n")
	}
	env := map[string]string{
		"TWILIO_ACCOUNT_SID": demoTwilioSID, "TWILIO_AUTH_TOKEN": demoTwilioToken, "FACEBOOK_TOKEN": demoFBToken,
		"X_KEY": demoX.ConsumerKey, "X_SECRET": demoX.ConsumerSecret, "X_TOKEN": demoX.Token, "X_TOKEN_SECRET": demoX.TokenSecret,
	}
	cfg, err := config.Parse("demo.yaml", []byte(yaml.String()), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return fmt.Errorf("demo config: %w", err)
	}

	fmt.Fprintf(stdout, "Tocsin demo: %d servers in %d boxes on loopback, checked every %s from %s in turn.\n", len(fleet), len(demoBoxes), f.interval, strings.Join(cfg.Locations, ", "))
	fmt.Fprintf(stdout, "The public status page: %s (its API at %sapi/v2/summary.json)\n", pageURL, pageURL)
	outboxLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	outboxSrv := httpguard.Server((&outboxView{mail: outbox, sms: sms, x: xs, fb: fb}).serve(pageURL), httpguard.DefaultLimits(), nil)
	go outboxSrv.Serve(outboxLn)
	defer outboxSrv.Close()
	fmt.Fprintf(stdout, "What would have gone out (SMS, email, tickets, posts): http://%s/\n", outboxLn.Addr())
	// The usual admin port if it is free, any other if not.
	adminLn, err := net.Listen("tcp", "127.0.0.1:9464")
	if err != nil {
		if adminLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "Metrics and health: http://%[1]s/metrics, http://%[1]s/readyz\n", adminLn.Addr())
	// The bus listens on loopback, any free port, for the user whose
	// password it writes to the data directory: the other commands find
	// both there with --data.
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	if strings.ContainsAny(data, " \t\n'\"\\$`") {
		data = "'" + strings.ReplaceAll(data, "'", `'\''`) + "'" // for the shell
	}
	natsFlag := " --data " + data
	fmt.Fprintf(stdout, "From another terminal, as the on-call engineer: tocsin status%[1]s; tocsin ack%[1]s CODE, with the code an SMS gives;\n", natsFlag)
	fmt.Fprintf(stdout, "tocsin incident update%s INCIDENT --status identified --message \"…\" to tell the status page's readers.\n", natsFlag)
	fmt.Fprintf(stdout, "Every %s, for %s, one server stops answering (watch it be suspected, confirmed from elsewhere, paged about and resolved),\n", f.every, f.outage)
	fmt.Fprintf(stdout, "or one location loses its route to a server (watch the others clear it as a false alarm, and nobody be told),\n")
	fmt.Fprintf(stdout, "or a whole box goes down (an outage customers see, taken to the datacentre and the public).\n")
	fmt.Fprintf(stdout, "The person on call gets an SMS (to a stand-in for Twilio on loopback) and everyone an email (to a mail server on\n")
	fmt.Fprintf(stdout, "loopback, %s). An outage still open after %s is emailed to the datacentre, and after %s posted to X and\n", outbox.Addr, cfg.Escalation.DatacentreAfter, cfg.Escalation.SocialAfter)
	fmt.Fprintf(stdout, "Facebook (stand-ins on loopback) with a banner raised for the hosting pages. All are shown here. Ctrl-C to stop.\n\n")

	var wg sync.WaitGroup
	defer wg.Wait() // deferred first, so it runs after cancel
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := &lockedWriter{w: stdout}
	wg.Go(func() { showMail(ctx, outbox, out) })
	wg.Go(func() { showSMS(ctx, sms, out) })
	wg.Go(func() { showPublic(ctx, xs, fb, out) })
	wg.Go(func() { breakThings(ctx, fleet, cfg.Locations, f, out) })

	// Each location checks from an address of its own, so that one can lose
	// its route to a server while the others still reach it.
	rf := &runFlags{data: f.data, services: strings.Join(services, ","), location: strings.Join(cfg.Locations, ","),
		source: strings.Join(demoSources, ","), shutdown: 10 * time.Second, replicas: 1, pageListener: pageLn, adminListener: adminLn,
		natsListen: "127.0.0.1:0"}
	return runServices(ctx, cfg, rf, log, func(b *bus.Bus) {
		wg.Go(func() { showChanges(ctx, b, out) })
		wg.Go(func() { showBanner(ctx, b, out) })
	})
}

// breakThings switches a random server off now and then, and on again.
func breakThings(ctx context.Context, fleet []*loopbackServer, locations []string, f demoFlags, out io.Writer) {
	next := time.NewTimer(min(f.every, 3*f.interval))
	defer next.Stop()
	for round := 0; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		}
		s := fleet[rand.IntN(len(fleet))]
		switch round % 3 {
		case 1:
			// A location loses its route to a server: the others still
			// reach it, so this must never wake anyone.
			i := rand.IntN(len(demoSources))
			fmt.Fprintf(out, "%s  demo: %s loses its route to %s for %s\n", clock(), locations[i], s.name, f.outage)
			s.Unreachable(demoSources[i])
			if !sleep(ctx, f.outage) {
				return
			}
			s.Unreachable("")
			fmt.Fprintf(out, "%s  demo: %s reaches %s again\n", clock(), locations[i], s.name)
		case 2:
			// A whole box goes: an outage customers see, which the
			// escalator takes to the public.
			b := demoBoxes[rand.IntN(len(demoBoxes))]
			fmt.Fprintf(out, "%s  demo: every server of %s (%s) stops answering for %s\n", clock(), b.name, strings.Join(b.servers, ", "), f.outage)
			var down []*loopbackServer
			for _, s := range fleet {
				if slices.Contains(b.servers, s.name) {
					s.Off()
					down = append(down, s)
				}
			}
			if !sleep(ctx, f.outage) {
				return
			}
			for _, s := range down {
				if err := s.On(); err != nil {
					fmt.Fprintf(out, "%s  demo: %s cannot come back: %v\n", clock(), s.name, err)
				}
			}
			fmt.Fprintf(out, "%s  demo: %s answers again\n", clock(), b.name)
		default:
			fmt.Fprintf(out, "%s  demo: %s stops answering for %s\n", clock(), s.name, f.outage)
			s.Off()
			if !sleep(ctx, f.outage) {
				return
			}
			if err := s.On(); err != nil {
				fmt.Fprintf(out, "%s  demo: %s cannot come back: %v\n", clock(), s.name, err)
			} else {
				fmt.Fprintf(out, "%s  demo: %s answers again\n", clock(), s.name)
			}
		}
		next.Reset(f.every)
	}
}

// sleep waits for d, or less if ctx ends first; it says whether it slept.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// showChanges prints every server and box state change and every false
// alarm, as the verifier publishes them, and what staff do: acknowledging
// an incident, telling the public about it.
func showChanges(ctx context.Context, b *bus.Bus, out io.Writer) {
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectServerChanges, events.SubjectBoxChanges, events.SubjectFalseAlarms, events.SubjectIncidents},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return
	}
	for ctx.Err() == nil {
		m, err := c.Next(jetstream.FetchContext(ctx))
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ev, err := events.Decode(m.Subject(), m.Data())
		if err != nil {
			continue
		}
		if line := describe(ev); line != "" {
			fmt.Fprintf(out, "%s  %s\n", clock(), line)
		}
	}
}

// describe puts an event in one line for the demo's reader.
func describe(ev events.Event) string {
	switch d := ev.Data.(type) {
	case *events.ServerStateChanged:
		line := fmt.Sprintf("%-6s %s → %s", d.Server, d.From, d.To)
		if d.Reason != "" {
			line += "  (" + d.Reason
			if d.To == events.StateDown && len(d.Locations) > 0 {
				line += "; seen from " + strings.Join(d.Locations, ", ")
			}
			line += ")"
		}
		if d.Incident != "" {
			line += "  incident " + d.Incident
		}
		return line
	case *events.BoxStateChanged:
		line := fmt.Sprintf("box %s: %s", d.Box, d.To)
		if d.From != "" {
			line = fmt.Sprintf("box %s: %s → %s", d.Box, d.From, d.To)
		}
		if len(d.Down) > 0 {
			line += "  (down: " + strings.Join(d.Down, ", ") + ")"
		}
		if d.To == events.BoxDegraded {
			line += "  the service is still available"
		}
		return line
	case *events.FalseAlarm:
		return fmt.Sprintf("%-6s false alarm: %s seen from %s, but %s; nobody told", d.Server, d.Reason, strings.Join(d.Locations, ", "), d.Why)
	case *events.IncidentAcknowledged:
		return fmt.Sprintf("incident %s acknowledged by %s (via %s): no more reminders", d.Incident, d.By, d.Via)
	case *events.IncidentNote:
		return fmt.Sprintf("incident %s: %s posts %q: %s", d.Incident, d.By, d.Status, d.Message)
	}
	return ""
}

// showMail prints each email as the loopback mail server receives it; the
// body once for messages that differ only in their recipient.
func showMail(ctx context.Context, outbox *smtpserver.Server, out io.Writer) {
	seen, last := 0, ""
	for {
		msgs, err := outbox.WaitFor(ctx, func(m []smtpserver.Message) bool { return len(m) > seen })
		if err != nil {
			return
		}
		for _, m := range msgs[seen:] {
			fmt.Fprintf(out, "%s  email to %s: %s\n", clock(), strings.Join(m.To, ", "), m.Subject)
			if m.Subject == last {
				continue
			}
			last = m.Subject
			for line := range strings.SplitSeq(strings.TrimRight(m.Text, "\n"), "\n") {
				fmt.Fprintf(out, "          │ %s\n", line)
			}
		}
		seen = len(msgs)
	}
}

// The demo's Twilio account, known only to its stand-in.
const (
	demoTwilioSID   = "AC00000000000000000000000000000de0"
	demoTwilioToken = "demotoken"
)

// The demo's X and Facebook accounts, known only to their stand-ins.
var demoX = xapi.Credentials{ConsumerKey: "demokey", ConsumerSecret: "demosecret", Token: "demotoken", TokenSecret: "demotokensecret"}

const demoFBToken = "demopagetoken"

// showPublic prints each post and comment as the X and Facebook stand-ins
// accept them.
func showPublic(ctx context.Context, xs *xapi.Server, fb *graphapi.Server, out io.Writer) {
	var posts, fbPosts, comments int
	for sleep(ctx, 200*time.Millisecond) {
		for _, p := range xs.Posts()[posts:] {
			kind := "post"
			if p.ReplyTo != "" {
				kind = "reply"
			}
			fmt.Fprintf(out, "%s  X %s: %s\n", clock(), kind, p.Text)
			posts++
		}
		for _, p := range fb.Posts()[fbPosts:] {
			fmt.Fprintf(out, "%s  Facebook post: %s\n", clock(), p.Message)
			fbPosts++
		}
		for _, c := range fb.Comments()[comments:] {
			fmt.Fprintf(out, "%s  Facebook comment: %s\n", clock(), c.Message)
			comments++
		}
	}
}

// showBanner prints the hosting pages' banner as it goes up and down.
func showBanner(ctx context.Context, b *bus.Bus, out io.Writer) {
	kv, err := b.KV(ctx, events.BucketBanner)
	if err != nil {
		return
	}
	w, err := kv.Watch(ctx, events.BannerKey, jetstream.UpdatesOnly())
	if err != nil {
		return
	}
	defer w.Stop()
	for e := range w.Updates() {
		var bn events.Banner
		if e == nil || json.Unmarshal(e.Value(), &bn) != nil {
			continue
		}
		if bn.On {
			fmt.Fprintf(out, "%s  banner on the hosting pages: %s (%s)\n", clock(), bn.Message, bn.Link)
		} else {
			fmt.Fprintf(out, "%s  banner on the hosting pages: down\n", clock())
		}
	}
}

// showSMS prints each SMS as the Twilio stand-in accepts it.
func showSMS(ctx context.Context, sms *twilioapi.Server, out io.Writer) {
	for seen := 0; ; {
		msgs, err := sms.WaitFor(ctx, seen+1)
		if err != nil {
			return
		}
		for _, m := range msgs[seen:] {
			fmt.Fprintf(out, "%s  SMS to %s: %s\n", clock(), m.To, m.Body)
		}
		seen = len(msgs)
	}
}

func clock() string { return time.Now().Format("15:04:05") }

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
