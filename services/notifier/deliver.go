package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/internal/metrics"
	"github.com/tocsin-alarm/tocsin/internal/redact"
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
)

// deliveryKey names the record of one message to one person over one channel.
func deliveryKey(incident, step, channel string, s config.Staff) string {
	return fmt.Sprintf("%s.%s.%s.%s", incident, step, channel, staffKey(s))
}

// deliver sends one message to one person over one channel unless its
// record says it went already. A retryable failure returns an error, and
// once the channel has failed for longer than fallback_after (or at once
// when it is refused for good) the message also goes by the other
// channel, saying why.
func (n *Notifier) deliver(ctx context.Context, kv jetstream.KeyValue, st *incidentState, m message, r recipient, ch string, log *slog.Logger) error {
	key := deliveryKey(m.Incident, m.step(), ch, r.Staff)
	rec, rev, err := readDelivery(ctx, kv, key)
	if err != nil {
		return err
	}
	log = log.With("staff", r.Staff.Name, "channel", ch, "step", m.step())
	if rec.Outcome == outcomeSent || rec.Outcome == outcomeFailed {
		log.Info("already delivered; not sending again", "outcome", rec.Outcome)
		return nil
	}
	sid, err := n.transmit(ctx, st, m, r.Staff, ch, "")
	now := n.now()
	rec.Channel, rec.Staff, rec.At = ch, r.Staff.Name, now
	rec.Attempts++
	switch {
	case err == nil:
		rec.Outcome, rec.SID, rec.Reason = outcomeSent, sid, ""
		n.m.Notification(ch, metrics.Sent)
		log.Info("sent", "to", contact(r.Staff, ch), "attempts", rec.Attempts)
		// If we die between the send and this write, the message goes
		// again on redelivery. That window is this one write.
		n.record(ctx, kv, key, rec, rev, log)
		if ch == chanSMS {
			n.rememberPage(ctx, kv, m.Incident, r.Staff)
		}
		return nil
	case bus.IsPermanent(err):
		rec.Outcome, rec.Reason = outcomeFailed, err.Error()
		n.m.Notification(ch, metrics.Failed)
		log.Error("refused for good; trying the other channel", "to", contact(r.Staff, ch), "err", err)
		n.record(ctx, kv, key, rec, rev, log)
		return n.fallback(ctx, kv, st, m, r, ch, rec.Reason, log)
	}
	if rec.Since.IsZero() {
		rec.Since = now
	}
	rec.Outcome, rec.Reason = outcomeFailing, err.Error()
	n.m.Notification(ch, metrics.Retried)
	n.record(ctx, kv, key, rec, rev, log)
	if now.Sub(rec.Since) >= n.cfg.Notify.FallbackAfter.D() {
		if ferr := n.fallback(ctx, kv, st, m, r, ch, fmt.Sprintf("failing for %s: %s", now.Sub(rec.Since).Round(time.Second), rec.Reason), log); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}
	return fmt.Errorf("%s to %s: %w", ch, r.Staff.Name, err)
}

// fallback sends a message that failed on one channel over the other, once,
// saying what went wrong.
func (n *Notifier) fallback(ctx context.Context, kv jetstream.KeyValue, st *incidentState, m message, r recipient, failed, why string, log *slog.Logger) error {
	other := chanEmail
	if failed == chanEmail {
		other = chanSMS
	}
	if len(reachable(n.cfg, r.Staff, []string{other})) == 0 {
		log.Error("no other channel to reach this person by: they were not told", "failed", failed)
		return nil
	}
	key := deliveryKey(m.Incident, m.step()+"-fallback", other, r.Staff)
	rec, rev, err := readDelivery(ctx, kv, key)
	if err != nil || rec.Outcome == outcomeSent || rec.Outcome == outcomeFailed {
		return err
	}
	note := fmt.Sprintf("The SMS to you about this could not be delivered (%s); this email carries it instead.", why)
	if failed == chanEmail {
		note = "email failed"
	}
	sid, err := n.transmit(ctx, st, m, r.Staff, other, note)
	rec.Channel, rec.Staff, rec.At, rec.SID = other, r.Staff.Name, n.now(), sid
	rec.Attempts++
	switch {
	case err == nil:
		rec.Outcome = outcomeSent
		n.m.Notification(other, metrics.Fallback)
		log.Warn("sent by the other channel instead", "to", contact(r.Staff, other), "failed", failed)
	case bus.IsPermanent(err):
		rec.Outcome, rec.Reason = outcomeFailed, err.Error()
		n.m.Notification(other, metrics.Failed)
		log.Error("both channels refused for good: this person was not told", "err", err)
	default:
		return fmt.Errorf("fallback %s to %s: %w", other, r.Staff.Name, err)
	}
	n.record(ctx, kv, key, rec, rev, log)
	return nil
}

// transmit hands one message to a provider.
func (n *Notifier) transmit(ctx context.Context, st *incidentState, m message, s config.Staff, ch, note string) (string, error) {
	switch ch {
	case chanEmail:
		if n.mailer == nil {
			return "", bus.Permanent(errors.New("no mail provider configured"))
		}
		defer n.m.ProviderRequest("smtp", time.Now())
		return "", n.mailer.Send(ctx, m.email(n.cfg, s, n.domain, n.ackURL(st.Incident, s), note))
	case chanSMS:
		if n.texter == nil {
			return "", bus.Permanent(errors.New("no SMS provider configured"))
		}
		defer n.m.ProviderRequest("twilio", time.Now())
		return n.texter.Send(ctx, s.Phone, m.sms(note))
	}
	return "", bus.Permanent(fmt.Errorf("unknown channel %q", ch))
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

// contact is a person's address on a channel, redacted for a log.
func contact(s config.Staff, ch string) string {
	if ch == chanSMS {
		return redact.Phone(s.Phone)
	}
	return redact.Email(s.Email)
}

func readDelivery(ctx context.Context, kv jetstream.KeyValue, key string) (Delivery, uint64, error) {
	var d Delivery
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return d, 0, nil
	}
	if err != nil {
		return d, 0, fmt.Errorf("read delivery record: %w", err)
	}
	_ = json.Unmarshal(e.Value(), &d) // unreadable: as if never sent
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
		if err == nil || bus.IsConflict(err) {
			return // a conflict: an earlier attempt was stored after all
		}
		if attempt == recordAttempts || ctx.Err() != nil {
			log.Error("delivery record could not be written", "outcome", d.Outcome, "err", err)
			return
		}
		log.Warn("delivery record not written yet; trying again", "outcome", d.Outcome, "attempt", attempt, "err", err)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
