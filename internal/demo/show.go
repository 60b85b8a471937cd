package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Run narrates, until ctx ends, everything the stand-ins receive, and
// breaks things now and then: a server, a location's route to one, or a
// whole box.
func (w *World) Run(ctx context.Context) {
	out := w.out
	var wg sync.WaitGroup
	wg.Go(func() { showMail(ctx, w.Mail, out) })
	wg.Go(func() { showSMS(ctx, w.SMS, out) })
	wg.Go(func() { showPublic(ctx, w.X, w.FB, out) })
	wg.Go(func() { w.breakThings(ctx, out) })
	wg.Go(func() { w.backUp(ctx, out) })
	wg.Wait()
}

// Watch narrates, until ctx ends, what the pipeline decides as b carries
// it: state changes, false alarms, what staff do, the banner.
func (w *World) Watch(ctx context.Context, b *bus.Bus) {
	out := w.out
	var wg sync.WaitGroup
	wg.Go(func() { showChanges(ctx, b, out) })
	wg.Go(func() { showBanner(ctx, b, out) })
	wg.Wait()
}

// breakThings switches a random server off now and then, and on again.
func (w *World) breakThings(ctx context.Context, out io.Writer) {
	fleet, locations, f := w.fleet, w.Config.Locations, w.opts
	next := time.NewTimer(min(f.Every, 3*f.Interval))
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
			i := rand.IntN(len(Sources))
			fmt.Fprintf(out, "%s  demo: %s loses its route to %s for %s\n", clock(), locations[i], s.name, f.Outage)
			s.Unreachable(Sources[i])
			if !sleep(ctx, f.Outage) {
				return
			}
			s.Unreachable("")
			fmt.Fprintf(out, "%s  demo: %s reaches %s again\n", clock(), locations[i], s.name)
		case 2:
			// A whole box goes: an outage customers see, which the
			// escalator takes to the public.
			b := w.boxes[rand.IntN(len(w.boxes))]
			fmt.Fprintf(out, "%s  demo: every server of %s (%s) stops answering for %s\n", clock(), b.Name, strings.Join(b.names, ", "), f.Outage)
			down := b.Servers
			for _, s := range down {
				s.Off()
			}
			if !sleep(ctx, f.Outage) {
				return
			}
			for _, s := range down {
				if err := s.On(); err != nil {
					fmt.Fprintf(out, "%s  demo: %s cannot come back: %v\n", clock(), s.name, err)
				}
			}
			fmt.Fprintf(out, "%s  demo: %s answers again\n", clock(), b.Name)
		default:
			fmt.Fprintf(out, "%s  demo: %s stops answering for %s\n", clock(), s.name, f.Outage)
			s.Off()
			if !sleep(ctx, f.Outage) {
				return
			}
			if err := s.On(); err != nil {
				fmt.Fprintf(out, "%s  demo: %s cannot come back: %v\n", clock(), s.name, err)
			} else {
				fmt.Fprintf(out, "%s  demo: %s answers again\n", clock(), s.name)
			}
		}
		next.Reset(f.Every)
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
