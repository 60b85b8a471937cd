package notifier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// failoverAlert tells staff that failover keeps failing to move a server in
// or out of its pool: someone must do it by hand. The person on call is
// paged as for an outage, the others routed to the box get email; each
// alert goes once (its event id keys the deliveries).
func (n *Notifier) failoverAlert(ctx context.Context, kv jetstream.KeyValue, ev events.Event) error {
	a, ok := ev.Data.(*events.ServerAction)
	if !ok {
		return bus.Permanent(fmt.Errorf("a %s event on an action subject", ev.Type))
	}
	if err := logAction(ctx, kv, ev, a); err != nil {
		return err
	}
	if !a.Alert {
		return nil // done, held, or a failure still being retried quietly: the incident's next email tells
	}
	log := n.log.With("server", a.Server, "action", a.Action, "outcome", a.Outcome)
	what := "take " + a.Server + " out of its pool"
	if a.Action != events.ActionRemove {
		what = "put " + a.Server + " back in its pool"
	}
	subject := fmt.Sprintf("[%s] FAILOVER FAILING: could not %s", n.cfg.Site.Name, what)
	var b strings.Builder
	fmt.Fprintf(&b, "Failover could not %s after %d attempts: someone must do it by hand.\n\n", what, a.Attempt)
	for _, r := range [][2]string{{"Server", a.Server}, {"Box", a.Box}, {"Via", a.Via}, {"Target", a.Target}, {"Outcome", string(a.Outcome)},
		{"Error", a.Error}, {"Failing since", stamp(a.FailingSince)}, {"Incident", a.Incident}, {"Still in the pool", strings.Join(a.InPool, ", ")}} {
		if r[1] != "" {
			fmt.Fprintf(&b, "%-18s %s\n", r[0]+":", r[1])
		}
	}
	msg := message{
		Incident: a.Incident, Kind: kindFailover, Severity: events.SeverityOutage, Subject: subject,
		SMS:   fmt.Sprintf("FAILOVER FAILING: could not %s (%s). Do it by hand.", what, a.Error),
		key:   strings.ReplaceAll(ev.ID, "/", "."),
		plain: b.String(), headers: map[string]string{"X-Tocsin-Server": a.Server},
	}
	var errs []error
	// A dead server left in its pool: customers reach it. Routed as an
	// outage, and delivered as any page is: recorded, retried, carried by
	// the fallback channel when one fails.
	for _, r := range n.recipients([]string{a.Box}, n.now(), events.SeverityOutage) {
		channels := n.updateChannels(r)
		if r.OnCall {
			channels = r.Channels
		}
		for _, ch := range channels {
			if _, err := n.deliver(ctx, kv, nil, msg, r, ch, log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		log.Warn("failover alert not sent to everyone yet; will retry", "left", len(errs), "err", errs[0])
		return errors.Join(errs...)
	}
	log.Warn("staff told that failover keeps failing")
	return nil
}

// consumeActions follows failover's actions: each final outcome is logged
// for its incident's next email, and the alerts among them are sent.
func (n *Notifier) consumeActions(ctx context.Context, kv jetstream.KeyValue) error {
	return n.bus.Consume(ctx, bus.Consumer{
		Stream: events.StreamEvents, Name: "notifier-failover", Filter: []string{events.SubjectServerActions},
		Workers: 2, AckWait: n.ackWait, BackoffMin: time.Second, BackoffMax: 30 * time.Second, Since: time.Hour,
		Metrics: n.m, Log: n.log,
	}, func(ctx context.Context, ev events.Event) error { return n.failoverAlert(ctx, kv, ev) })
}
