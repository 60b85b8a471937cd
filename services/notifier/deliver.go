package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Delivery is the record of one message to one person over one channel,
// kept in the deliveries bucket under the message's id.
type Delivery struct {
	Channel  string    `json:"channel"`
	Staff    string    `json:"staff"`
	At       time.Time `json:"at"`
	Outcome  string    `json:"outcome"`          // "sent"; "failed" when refused for good; "failing" while retried
	Reason   string    `json:"reason,omitempty"` // why it failed
	Since    time.Time `json:"since,omitzero"`   // the first failure, while failing
	Attempts int       `json:"attempts"`
	SID      string    `json:"sid,omitempty"` // the provider's id for an SMS
}

// The outcomes of a delivery.
const (
	outcomeSent    = "sent"
	outcomeFailed  = "failed"
	outcomeFailing = "failing"
	// outcomeStorm: an SMS not sent, for the person was paged by SMS about
	// another incident moments ago, at least as bad: a storm pages each
	// person once. The email of the incident still goes.
	outcomeStorm = "storm"
)

// done reports whether a delivery needs no more attempts.
func (d Delivery) done() bool {
	return d.Outcome == outcomeSent || d.Outcome == outcomeFailed || d.Outcome == outcomeStorm
}

// deliveryKey names the record of one message to one person over one
// channel: the message's base, the channel, the person.
func deliveryKey(base, channel string, s config.Staff) string {
	return fmt.Sprintf("%s.%s.%s", base, channel, staffKey(s))
}

// deliver sends one message to one person over one channel unless its
// record says it went already, and reports whether the person has it (by
// this channel, or by the one that carried it). A retryable failure
// returns an error, and once the channel has failed for longer than
// fallback_after (or at once when it is refused for good) the message
// also goes by the channel notify.fallback names, saying why. st is the
// incident's state, nil for a message about no incident.
func (n *Notifier) deliver(ctx context.Context, kv jetstream.KeyValue, st *incidentState, m message, r recipient, ch string, log *slog.Logger) (bool, error) {
	key := deliveryKey(m.base(), ch, r.Staff)
	rec, rev, err := readDelivery(ctx, kv, key)
	if err != nil {
		return false, err
	}
	log = log.With("staff", r.Staff.Name, "channel", ch, "step", m.step())
	if rec.done() {
		log.Info("already delivered; not sending again", "outcome", rec.Outcome)
		by := ""
		if rec.Outcome == outcomeFailed {
			by = n.carried(ctx, kv, m, r, ch)
		}
		if n.wakes(ch) && rec.Outcome == outcomeSent || n.wakes(by) {
			rang(st, r.Staff) // sent before a crash: the state may not say so
		}
		return rec.Outcome == outcomeSent || rec.Outcome == outcomeStorm || by != "", nil
	}
	if n.wakes(ch) && (m.Kind == kindOpened || m.Kind == kindWorse) {
		why, err := n.storm(ctx, kv, m, r.Staff)
		if err != nil {
			return false, err
		}
		if why != "" {
			rec.Channel, rec.Staff, rec.At, rec.Outcome, rec.Reason = ch, r.Staff.Name, n.now(), outcomeStorm, why
			n.m.Notification(ch, metrics.Grouped)
			log.Info("not paged again in a storm", "why", why)
			n.record(ctx, kv, key, rec, rev, log)
			return true, nil
		}
	}
	sid, err := n.transmit(ctx, st, m, r.Staff, ch, "", "")
	now := n.now()
	rec.Channel, rec.Staff, rec.At = ch, r.Staff.Name, now
	rec.Attempts++
	switch {
	case err == nil:
		rec.Outcome, rec.SID, rec.Reason = outcomeSent, sid, ""
		n.m.Notification(ch, metrics.Sent)
		log.Info("sent", "to", n.contact(r.Staff, ch), "attempts", rec.Attempts)
		// If we die between the send and this write, the message goes
		// again on redelivery. That window is this one write.
		n.record(ctx, kv, key, rec, rev, log)
		if n.wakes(ch) && st != nil {
			rang(st, r.Staff)
			n.rememberPage(ctx, kv, m.Incident, r.Staff)
		}
		return true, nil
	case bus.IsPermanent(err):
		rec.Outcome, rec.Reason = outcomeFailed, err.Error()
		n.m.Notification(ch, metrics.Failed)
		log.Error("refused for good; trying the fallback channel", "to", n.contact(r.Staff, ch), "err", err)
		n.record(ctx, kv, key, rec, rev, log)
		return n.fallback(ctx, kv, st, m, r, ch, rec.Reason, log)
	}
	if rec.Since.IsZero() {
		rec.Since = now
	}
	rec.Outcome, rec.Reason = outcomeFailing, err.Error()
	n.m.Notification(ch, metrics.Retried)
	n.record(ctx, kv, key, rec, rev, log)
	carried := false
	if now.Sub(rec.Since) >= n.cfg.Notify.FallbackAfter.D() {
		ok, ferr := n.fallback(ctx, kv, st, m, r, ch, fmt.Sprintf("failing for %s: %s", now.Sub(rec.Since).Round(time.Second), rec.Reason), log)
		if ferr != nil {
			err = errors.Join(err, ferr)
		}
		carried = ok
	}
	return carried, fmt.Errorf("%s to %s: %w", ch, r.Staff.Name, err)
}

// rang notes that a person's phone rang for the incident, so that its
// resolution goes to them by SMS too.
func rang(st *incidentState, s config.Staff) {
	if st == nil {
		return // not about an incident
	}
	if st.Rang == nil {
		st.Rang = map[string]bool{}
	}
	st.Rang[staffKey(s)] = true
}

// pageRecord is the last page a person was sent by SMS, kept under
// "page.<staff key>" in the deliveries bucket: a storm pages each person
// once, across incidents and datacentres.
type pageRecord struct {
	Incident string          `json:"incident"`
	Step     string          `json:"step"`
	At       time.Time       `json:"at"`
	Severity events.Severity `json:"severity"`
}

// storm says why a page by SMS is not to be sent to a person ("" to send
// it): they were paged about another incident, still open, within the
// group window, and this one is no worse. Otherwise it claims the person's page record, so
// that the other incidents of the storm find it.
func (n *Notifier) storm(ctx context.Context, kv jetstream.KeyValue, m message, s config.Staff) (string, error) {
	key := "page." + staffKey(s)
	window := n.cfg.Notify.GroupWindow.D()
	for range 10 {
		// From the leader, as the other incident's state below: an older
		// page record a replica behind still has would hold this page back.
		var pg pageRecord
		rev, err := n.bus.GetLeaderJSON(ctx, kv, key, &pg)
		if err != nil {
			return "", err
		}
		now := n.now()
		switch {
		case pg.Incident == m.Incident && pg.Step == m.step():
			return "", nil // claimed before a retry
		case pg.Incident != "" && pg.Incident != m.Incident && now.Sub(pg.At) < window && !m.Severity.Worse(pg.Severity):
			// Its resolution may have been written a moment ago.
			var other incidentState
			if _, err := n.bus.GetLeaderJSON(ctx, kv, stateKey(pg.Incident), &other); err != nil {
				return "", err
			}
			if other.Resolved == nil {
				return fmt.Sprintf("paged about %s, still open, %s ago", pg.Incident, now.Sub(pg.At).Round(time.Second)), nil
			}
		}
		pg = pageRecord{Incident: m.Incident, Step: m.step(), At: now, Severity: m.Severity}
		if _, err := bus.PutJSON(ctx, kv, key, pg, rev); !bus.IsConflict(err) {
			return "", err
		}
	}
	return "", errors.New("the person's page record kept changing; retrying")
}

// carried is the channel that carried a message refused for good on
// failed, "" when none did.
func (n *Notifier) carried(ctx context.Context, kv jetstream.KeyValue, m message, r recipient, failed string) string {
	by := n.fallbackFor(r.Staff, failed)
	if by == "" {
		return ""
	}
	rec, _, err := readDelivery(ctx, kv, deliveryKey(m.base()+"-fallback", by, r.Staff))
	if err != nil || rec.Outcome != outcomeSent {
		return ""
	}
	return by
}

// fallback sends a message that failed on one channel by the channel
// notify.fallback names for it, once, saying what went wrong, and reports
// whether it went.
func (n *Notifier) fallback(ctx context.Context, kv jetstream.KeyValue, st *incidentState, m message, r recipient, failed, why string, log *slog.Logger) (bool, error) {
	by := n.fallbackFor(r.Staff, failed)
	if by == "" {
		log.Error("no other channel to reach this person by: they were not told", "failed", failed)
		return false, nil
	}
	key := deliveryKey(m.base()+"-fallback", by, r.Staff)
	rec, rev, err := readDelivery(ctx, kv, key)
	if err != nil || rec.Outcome == outcomeSent || rec.Outcome == outcomeFailed {
		return rec.Outcome == outcomeSent, err
	}
	sid, err := n.transmit(ctx, st, m, r.Staff, by, failed, why)
	rec.Channel, rec.Staff, rec.At, rec.SID = by, r.Staff.Name, n.now(), sid
	rec.Attempts++
	switch {
	case err == nil:
		rec.Outcome = outcomeSent
		if n.wakes(by) {
			rang(st, r.Staff)
		}
		n.m.Notification(by, metrics.Fallback)
		log.Warn("sent by the fallback channel instead", "to", n.contact(r.Staff, by), "failed", failed, "by", by)
	case bus.IsPermanent(err):
		rec.Outcome, rec.Reason = outcomeFailed, err.Error()
		n.m.Notification(by, metrics.Failed)
		log.Error("both channels refused for good: this person was not told", "by", by, "err", err)
	default:
		return false, fmt.Errorf("fallback %s to %s: %w", by, r.Staff.Name, err)
	}
	n.record(ctx, kv, key, rec, rev, log)
	return rec.Outcome == outcomeSent, nil
}

// transmit hands one message to the channel ch, for s. failed and why,
// when set, say which channel it stands in for and what went wrong there.
func (n *Notifier) transmit(ctx context.Context, st *incidentState, m message, s config.Staff, ch, failed, why string) (string, error) {
	c, ok := n.channel(ch)
	if !ok {
		return "", bus.Permanent(fmt.Errorf("no %s provider configured", ch))
	}
	ack := ""
	if st != nil {
		ack = n.ackURL(st.Incident, s)
	}
	defer n.m.ProviderRequest(c.Provider(), time.Now())
	sid, err := c.Send(ctx, m.to(s, ack, failed, why, ch))
	n.health.observe(ctx, ch, c.Provider(), err, n.now())
	return sid, err
}

// rememberPage notes which incident a person was last paged about, and
// what its short code stands for, so that an SMS reply "ACK" or "ACK code"
// finds it.
func (n *Notifier) rememberPage(ctx context.Context, kv jetstream.KeyValue, incident string, s config.Staff) {
	for _, key := range []string{"last." + staffKey(s), "code." + shortCode(incident)} {
		if _, err := kv.Put(ctx, key, []byte(incident)); err != nil {
			n.log.Warn("could not note the page for SMS replies", "incident", incident, "err", err)
		}
	}
}

// readDelivery reads the record of one message to one person over one
// channel; a record not found is a message never tried. A record found but
// not understood (corrupt, or written by a newer version) says the message
// was tried and not how it went: taking it as never sent could page twice,
// taking it as sent could silence the page. So it is neither: the message
// stays claimed and the error, retried with the event and logged each time
// (never set aside, which would drop the others' messages with it), names
// the record. Removing the record lets the next retry send the message.
func readDelivery(ctx context.Context, kv jetstream.KeyValue, key string) (Delivery, uint64, error) {
	var d Delivery
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return d, 0, nil
	}
	if err != nil {
		return d, 0, fmt.Errorf("read delivery record: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &d); err != nil || d.Outcome == "" {
		why := "it has no outcome"
		if err != nil {
			why = err.Error()
		}
		return Delivery{}, 0, fmt.Errorf("delivery record %s cannot be read (%s): not sent again, for it may have gone; delete the record to send it", key, events.Clip(why, 200))
	}
	return d, e.Revision(), nil
}

// recordAttempts and recordAttemptTimeout bound the writes of one
// delivery record: together longer than a stream's leader election.
const (
	recordAttempts       = 10
	recordAttemptTimeout = 2 * time.Second
)

// record writes a delivery record. Failing to record a message sent would
// send it again, so a write is tried again until the handler's time runs
// out, each attempt bounded on its own: a write whose answer was lost with
// a stream leader that died would otherwise wait out all that time, when
// the new leader, a few seconds on, would take it. After that, going on
// without the record is better than failing the event, which would send
// this message again at once.
func (n *Notifier) record(ctx context.Context, kv jetstream.KeyValue, key string, d Delivery, rev uint64, log *slog.Logger) {
	b, _ := json.Marshal(d)
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, recordAttemptTimeout)
		var err error
		if rev == 0 {
			_, err = kv.Create(actx, key, b)
		} else {
			_, err = kv.Update(actx, key, b, rev)
		}
		cancel()
		if err == nil || bus.IsConflict(err) && !bus.InFlight(err) {
			return // a conflict: an earlier attempt was stored after all
		}
		// On a cluster, an earlier attempt may still be in flight, and
		// may yet fail: it is stored only once it reads back.
		if bus.InFlight(err) {
			if e, gerr := kv.Get(ctx, key); gerr == nil && bytes.Equal(e.Value(), b) {
				return
			}
		}
		if attempt == recordAttempts || ctx.Err() != nil {
			log.Error("delivery record could not be written", "outcome", d.Outcome, "err", err)
			return
		}
		log.Warn("delivery record not written yet; trying again", "outcome", d.Outcome, "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
