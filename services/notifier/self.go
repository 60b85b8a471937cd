package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// kindSelf is no incident's: a part of the alarm itself stopped.
const kindSelf = "self"

// watchSelf opens the record of the providers' health and starts a part
// that follows the self alerts until ctx ends.
func (n *Notifier) watchSelf(ctx context.Context, kv jetstream.KeyValue, start func(func() error)) error {
	skv, err := n.bus.KV(ctx, events.BucketSelf)
	if err != nil {
		return err
	}
	n.health.mu.Lock()
	n.health.kv = skv
	n.health.mu.Unlock()
	start(func() error {
		return n.bus.Consume(ctx, bus.Consumer{
			Stream: events.StreamEvents, Name: "notifier-self", Filter: []string{events.SubjectSelf},
			Workers: 2, AckWait: n.ackWait, BackoffMin: time.Second, BackoffMax: 30 * time.Second, Since: time.Hour,
			Metrics: n.m, Log: n.log,
		}, func(ctx context.Context, ev events.Event) error { return n.selfAlert(ctx, kv, ev) })
	})
	return nil
}

// selfAlert tells the person on call that a part of the alarm stopped, or
// works again. Never the public, never the datacentre: self alerts are
// not incidents, and only this consumer reads them. Raised, it goes by
// SMS and email, but never by the channel whose provider it says is
// failing (an SMS about Twilio refusing would not arrive); no call, for
// the alarm is still up enough to say so, and a call is kept for
// customers down. Cleared, it goes by email, or SMS to one without.
func (n *Notifier) selfAlert(ctx context.Context, kv jetstream.KeyValue, ev events.Event) error {
	var m message
	var failing string
	switch a := ev.Data.(type) {
	case *events.SelfRaised:
		if a.Kind == events.SelfProvider {
			failing = a.What
		}
		var b strings.Builder
		fmt.Fprintf(&b, "The alarm itself needs attention: %s.\n\nWhat to do: %s\n\n", a.Title, a.Action)
		for _, r := range [][2]string{{"Kind", string(a.Kind)}, {"About", a.What}, {"Since", stampIf(a.Since)}, {"Raised", stamp(a.Raised)}, {"Detail", a.Detail}, {"Alert", a.Alert}} {
			if r[1] != "" {
				fmt.Fprintf(&b, "%-8s %s\n", r[0]+":", r[1])
			}
		}
		b.WriteString("\nOnly staff are told of this; it never reaches the status page. Another message says when it clears.\n")
		m = message{Kind: kindSelf, Severity: events.SeverityDegraded,
			Subject: fmt.Sprintf("[%s] ALARM SELF-CHECK: %s", n.cfg.Site.Name, a.Title),
			SMS:     fmt.Sprintf("TOCSIN SELF-CHECK: %s. %s", a.Title, a.Action),
			key:     a.Alert + ".raised", plain: b.String(),
			headers: map[string]string{"X-Tocsin-Self-Alert": a.Alert},
		}
	case *events.SelfCleared:
		m = message{Kind: kindSelf, Severity: events.SeverityDegraded,
			Subject: fmt.Sprintf("[%s] ALARM SELF-CHECK CLEARED: %s", n.cfg.Site.Name, a.Title),
			SMS:     fmt.Sprintf("TOCSIN SELF-CHECK CLEARED after %s: %s", a.Cleared.Sub(a.Raised).Round(time.Second), a.Title),
			key:     a.Alert + ".cleared",
			plain: fmt.Sprintf("Cleared at %s, after %s: %s.\n\nNothing more to do about it.\n",
				stamp(a.Cleared), a.Cleared.Sub(a.Raised).Round(time.Second), a.Title),
			headers: map[string]string{"X-Tocsin-Self-Alert": a.Alert},
		}
	default:
		return bus.Permanent(fmt.Errorf("a %s event on a self-alert subject", ev.Type))
	}
	log := n.log.With("self_alert", m.key)
	var errs []error
	for _, r := range n.selfRecipients(failing, ev.Type == events.TypeSelfCleared) {
		for _, ch := range r.Channels {
			if _, err := n.deliver(ctx, kv, nil, m, r, ch, log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		log.Warn("self alert not sent to everyone yet; will retry", "left", len(errs), "err", errs[0])
		return errors.Join(errs...)
	}
	return nil
}

// selfRecipients is who hears of a self alert: the person on call (or,
// with no rotation, those on call for an outage), by SMS and email but
// never by the channel failing; for a clearing, by one channel, email
// first.
func (n *Notifier) selfRecipients(failing string, cleared bool) []recipient {
	var out []recipient
	for _, r := range n.recipients(nil, n.now(), events.SeverityOutage) {
		if !r.OnCall {
			continue
		}
		chans := slices.DeleteFunc(n.reachable(r.Staff, []string{chanEmail, chanSMS}), func(c string) bool { return c == failing })
		if cleared && len(chans) > 1 {
			chans = chans[:1]
		}
		if len(chans) > 0 {
			r.Channels = chans
			out = append(out, r)
		}
	}
	return out
}

func stampIf(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return stamp(t)
}
