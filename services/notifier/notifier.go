// Package notifier tells the people on call. It turns incident events into
// email, one message per person so that nobody's address is shown to the
// others, threaded per incident, and records each delivery so that an event
// delivered again never sends again.
package notifier

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/bus"
	"github.com/tocsin-alarm/tocsin/internal/config"
	"github.com/tocsin-alarm/tocsin/internal/redact"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/smtpmail"
)

// Mailer sends one email. It returns an error marked bus.Permanent when
// trying again cannot help.
type Mailer interface {
	Send(ctx context.Context, m smtpmail.Message) error
}

// Deps are what a notifier needs from outside.
type Deps struct {
	Bus *bus.Bus
	Log *slog.Logger
	Now func() time.Time
	// Mailer sends email; nil builds one from the config's SMTP provider.
	Mailer Mailer
}

// Notifier sends incident messages.
type Notifier struct {
	cfg    *config.Config
	bus    *bus.Bus
	log    *slog.Logger
	now    func() time.Time
	mailer Mailer
	domain string
}

// New returns a notifier for the staff in cfg.
func New(cfg *config.Config, deps Deps) (*Notifier, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	n := &Notifier{cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", "notifier"), now: deps.Now, mailer: deps.Mailer}
	if s := cfg.Providers.SMTP; s != nil {
		n.domain = mailDomain(s.From)
		if n.mailer == nil {
			m, err := newMailer(s)
			if err != nil {
				return nil, err
			}
			n.mailer = m
		}
	}
	return n, nil
}

func newMailer(s *config.SMTP) (*smtpmail.Sender, error) {
	mc := smtpmail.Config{
		Host: s.Host, Port: s.Port, From: s.From,
		Username: s.Username, Password: s.Password.Reveal(),
		TLS: smtpmail.TLSMode(s.TLS),
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("smtp ca_file %s holds no PEM certificate", s.CAFile)
		}
		mc.RootCAs = pool
	}
	m, err := smtpmail.New(mc)
	if err != nil {
		return nil, fmt.Errorf("smtp provider: %w", err)
	}
	return m, nil
}

// Delivery is the record of one notification, kept in the deliveries bucket
// under the notification's id.
type Delivery struct {
	Channel string    `json:"channel"`
	Staff   string    `json:"staff"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`          // "sent", or "failed" when the provider refused it for good
	Reason  string    `json:"reason,omitempty"` // why it failed
}

// Run sends messages until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	kv, err := n.bus.KV(ctx, events.BucketDeliveries)
	if err != nil {
		return err
	}
	return n.bus.Consume(ctx, bus.Consumer{
		Stream:  events.StreamEvents,
		Name:    "notifier",
		Filter:  []string{events.SubjectIncidents},
		Workers: 4,
		// One event may mean an email to each of many people, one after the other.
		AckWait: 5 * time.Minute,
		Since:   time.Hour, // a notifier deployed afresh tells of recent incidents only
	}, func(ctx context.Context, ev events.Event) error { return n.handle(ctx, kv, ev) })
}

func (n *Notifier) handle(ctx context.Context, kv jetstream.KeyValue, ev events.Event) error {
	var step, incident string
	var compose func(config.Staff) smtpmail.Message
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		step, incident = "opened", d.Incident
		compose = func(s config.Staff) smtpmail.Message { return openedEmail(n.cfg, d, s, n.domain) }
	case *events.IncidentResolved:
		step, incident = "resolved", d.Incident
		compose = func(s config.Staff) smtpmail.Message { return resolvedEmail(n.cfg, d, s, n.domain) }
	default:
		return nil // other incident steps are not for email yet
	}
	if n.mailer == nil {
		return nil
	}
	log := n.log.With("incident", incident, "step", step)
	var retry []error
	for _, s := range n.cfg.Staff {
		if s.Email == "" {
			continue
		}
		if step == "opened" && n.recorded(ctx, kv, deliveryKey(incident, "resolved", s)) {
			// The opening email was held up until after the resolution went
			// out: telling of the outage now would only confuse.
			log.Info("outage already resolved for this person; not sending the opening email", "staff", s.Name)
			continue
		}
		if err := n.deliver(ctx, kv, deliveryKey(incident, step, s), s, compose(s), log); err != nil {
			retry = append(retry, err)
		}
	}
	// Those already told are recorded; a retry reaches only the others.
	return errors.Join(retry...)
}

// deliveryKey names the record of one email about one step of an incident.
func deliveryKey(incident, step string, s config.Staff) string {
	return fmt.Sprintf("%s.%s.email.%s", incident, step, staffKey(s))
}

// recorded reports whether a delivery record exists; when the bucket cannot
// be read it says no, and sending goes ahead.
func (n *Notifier) recorded(ctx context.Context, kv jetstream.KeyValue, key string) bool {
	_, err := kv.Get(ctx, key)
	return err == nil
}

// deliver sends one email unless its record says it went already.
func (n *Notifier) deliver(ctx context.Context, kv jetstream.KeyValue, key string, s config.Staff, m smtpmail.Message, log *slog.Logger) error {
	if _, err := kv.Get(ctx, key); err == nil {
		log.Info("already delivered; not sending again", "staff", s.Name)
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read delivery record: %w", err)
	}
	rec := Delivery{Channel: "email", Staff: s.Name, Outcome: "sent"}
	err := n.mailer.Send(ctx, m)
	switch {
	case err == nil:
		log.Info("email sent", "staff", s.Name, "to", redact.Email(s.Email))
	case bus.IsPermanent(err):
		log.Error("email refused for good; this person was not told", "staff", s.Name, "to", redact.Email(s.Email), "err", err)
		rec.Outcome, rec.Reason = "failed", err.Error()
	default:
		log.Warn("email not sent; will retry", "staff", s.Name, "to", redact.Email(s.Email), "err", err)
		return fmt.Errorf("email to %s: %w", s.Name, err)
	}
	// If we die between the send and this write, the message goes again on
	// redelivery with the same Message-ID. That window is this one write.
	rec.At = n.now()
	b, _ := json.Marshal(rec)
	for attempt := 1; ; attempt++ {
		_, err := kv.Create(ctx, key, b)
		if err == nil || bus.IsConflict(err) {
			return nil
		}
		if attempt == 3 || ctx.Err() != nil {
			// Failing the event now would send this message again; better
			// to go on without the record and say so.
			log.Error("email sent but its delivery record could not be written", "staff", s.Name, "err", err)
			return nil
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
