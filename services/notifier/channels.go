package notifier

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/redact"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliosms"
)

// Message is one message to one person, as every channel takes it: the
// notifier writes it whole, and a channel only carries it.
type Message struct {
	To config.Staff
	// Key names the message to this person. It is derived, not random:
	// the same message sent again carries the same key, which a provider
	// or a mail client can use to show it once.
	Key string
	// Thread is the Key of the message this one follows (the opening of
	// its incident), "" for a first message.
	Thread string
	// Incident and Kind are what the message is about: an incident and
	// which of its messages ("opened", "update", …), or the event of a
	// failover alert and "failover".
	Incident, Kind string
	// Subject, Text and HTML are the message in full; HTML may be empty.
	Subject, Text, HTML string
	// Short is the message in a few words, for a phone.
	Short string
	// Headers are what a channel that has headers adds.
	Headers map[string]string
}

// Channel carries messages to people by one means: SMS, email, a voice
// call. Adding one is an adapter with these methods and one line in
// channels.
type Channel interface {
	// Name is how the config and the delivery records call the channel.
	Name() string
	// Provider names who carries the messages, in metrics.
	Provider() string
	// Address is where the channel reaches s, "" when it cannot.
	Address(s config.Staff) string
	// Wakes says whether a message by the channel wakes its reader: a
	// page. A storm pages each person once, updates go by a channel that
	// does not wake where there is one, and a resolution goes by a waking
	// channel only to those it woke.
	Wakes() bool
	// Send hands m to the provider and returns the provider's id for it,
	// if any, once the provider has accepted it. An error that trying
	// again cannot fix counts as bus.IsPermanent; any other is retried,
	// after its bus.RetryAfter when it gives one. Error texts hold no
	// secret and no address in full.
	Send(ctx context.Context, m Message) (string, error)
}

// channels are the channels the config's providers describe, but for
// those given, by name, in given, and given's others after them.
func channels(cfg *config.Config, given []Channel, callback string) ([]Channel, error) {
	// A new channel is one more line here, and its name in config.Channels.
	builtin := []struct {
		name  string
		build func() (Channel, error) // nil, nil: its provider is not configured
	}{
		{chanSMS, func() (Channel, error) { return newSMS(cfg.Providers.Twilio, callback) }},
		{chanEmail, func() (Channel, error) { return newEmail(cfg.Providers.SMTP) }},
		{chanVoice, func() (Channel, error) {
			if nc := cfg.Notify; nc.PublicURL == "" || !nc.LinkKey.IsSet() {
				return nil, nil // nowhere for the keypress to go: no calls
			}
			return newVoice(cfg)
		}},
	}
	var out []Channel
	for _, b := range builtin {
		if i := slices.IndexFunc(given, func(c Channel) bool { return c.Name() == b.name }); i >= 0 {
			out = append(out, given[i])
			continue
		}
		c, err := b.build()
		if err != nil {
			return nil, err
		}
		if c != nil {
			out = append(out, c)
		}
	}
	for _, c := range given {
		if !slices.ContainsFunc(out, func(o Channel) bool { return o.Name() == c.Name() }) {
			out = append(out, c)
		}
	}
	return out, nil
}

// The channels.
const (
	chanSMS   = "sms"
	chanEmail = "email"
)

// texter sends one SMS and returns the provider's id for it.
type texter interface {
	Send(ctx context.Context, to, body string) (string, error)
}

// smsChannel is the SMS channel: the short text, fitted to one segment
// where it fits, to the person's phone.
type smsChannel struct{ texter texter }

func newSMS(t *config.Twilio, callback string) (Channel, error) {
	if t == nil {
		return nil, nil
	}
	s, err := twiliosms.New(twiliosms.Config{Account: twiliorest.Account{
		SID: t.AccountSID.Reveal(), AuthToken: t.AuthToken.Reveal(), APIURL: t.APIURL, StatusCallback: callback,
	}, From: t.From})
	if err != nil {
		return nil, err
	}
	return smsChannel{s}, nil
}

func (smsChannel) Name() string                  { return chanSMS }
func (smsChannel) Provider() string              { return "twilio" }
func (smsChannel) Address(s config.Staff) string { return s.Phone }
func (smsChannel) Wakes() bool                   { return true }
func (c smsChannel) Send(ctx context.Context, m Message) (string, error) {
	return c.texter.Send(ctx, m.To.Phone, twiliosms.Fit(m.Short))
}

// mailer sends one email.
type mailer interface {
	Send(ctx context.Context, m smtpmail.Message) error
}

// emailChannel is the email channel: the message in full, its Message-ID
// made from its key so that a resend is the same mail, threaded under the
// message it follows.
type emailChannel struct {
	mailer mailer
	domain string // of the Message-IDs
}

func newEmail(s *config.SMTP) (Channel, error) {
	if s == nil {
		return nil, nil
	}
	m, err := smtpmail.FromConfig(s)
	if err != nil {
		return nil, err
	}
	return emailChannel{m, mailDomain(s.From)}, nil
}

func (emailChannel) Name() string                  { return chanEmail }
func (emailChannel) Provider() string              { return "smtp" }
func (emailChannel) Address(s config.Staff) string { return s.Email }
func (emailChannel) Wakes() bool                   { return false }
func (c emailChannel) Send(ctx context.Context, m Message) (string, error) {
	e := smtpmail.Message{
		To: m.To.Email, ToName: m.To.Name, Subject: m.Subject,
		MessageID: c.id(m.Key), Text: m.Text, HTML: m.HTML, Headers: m.Headers,
	}
	if m.Thread != "" {
		e.InReplyTo, e.References = c.id(m.Thread), []string{c.id(m.Thread)}
	}
	return "", c.mailer.Send(ctx, e)
}

func (c emailChannel) id(key string) string { return fmt.Sprintf("tocsin.%s@%s", key, c.domain) }

// channel is the named channel, if there is one.
func (n *Notifier) channel(name string) (Channel, bool) {
	i := slices.IndexFunc(n.chans, func(c Channel) bool { return c.Name() == name })
	if i < 0 {
		return nil, false
	}
	return n.chans[i], true
}

// wakes reports whether the named channel pages.
func (n *Notifier) wakes(name string) bool {
	c, ok := n.channel(name)
	return ok && c.Wakes()
}

// reachable is the channels of want by which a person can be told: the
// channel is there and has an address for them.
func (n *Notifier) reachable(s config.Staff, want []string) []string {
	var out []string
	for _, name := range want {
		if c, ok := n.channel(name); ok && c.Address(s) != "" {
			out = append(out, name)
		}
	}
	return out
}

// fallbackFor is the channel that carries for s a message that failed on
// failed: the next in notify.fallback that reaches them, wrapping round;
// "" when there is none.
func (n *Notifier) fallbackFor(s config.Staff, failed string) string {
	order := n.cfg.Notify.Fallback
	i := slices.Index(order, failed)
	if i < 0 {
		return ""
	}
	for k := 1; k < len(order); k++ {
		if ch := order[(i+k)%len(order)]; len(n.reachable(s, []string{ch})) > 0 {
			return ch
		}
	}
	return ""
}

// contact is a person's address on a channel, redacted for a log.
func (n *Notifier) contact(s config.Staff, ch string) string {
	c, ok := n.channel(ch)
	if !ok {
		return "…"
	}
	if a := c.Address(s); strings.Contains(a, "@") {
		return redact.Email(a)
	}
	return redact.Phone(c.Address(s))
}

// label is how a message names a channel to a person.
func label(ch string) string {
	if ch == chanSMS {
		return "SMS"
	}
	return ch
}
