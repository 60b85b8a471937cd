package statuspage

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// The stale alert: off-site, on another network, the page is the one part
// of the alarm left to tell staff that the whole of it has gone quiet. When
// it has heard nothing from the main site for statuspage.stale_alert.after
// it emails them once, through a mail server of its own (never the bus or
// the notifier: they are what may be gone), and once more when it hears
// from the main site again.

// staleEpisode is what staff were emailed about one loss of the link. It is
// kept with the page's state, so that a page restarted during the loss
// does not email them about it again.
type staleEpisode struct {
	Since     time.Time `json:"since"`                // when the link was lost
	StaleSent time.Time `json:"stale_sent,omitzero"`  // when staff were first told; zero: not told
	StaleDone bool      `json:"stale_done,omitempty"` // told, given up, or heard again first
	Heard     time.Time `json:"heard,omitzero"`       // when the page heard again
	// RecoveryDone: told that it hears again, or given up.
	RecoveryDone bool `json:"recovery_done,omitempty"`
}

// The stale alert's pace: how often it looks at the link, and how a failed
// send is retried. The attempts are bounded: after about half an hour a
// mail server that still refuses is given up on, and the log says so.
const (
	staleTick        = 5 * time.Second
	staleBackoff     = 10 * time.Second
	staleBackoffMax  = 5 * time.Minute
	staleMaxAttempts = 10
	staleSendTimeout = 30 * time.Second
)

// staleAlert sends the stale alert's emails; its state besides the episode
// belongs to the one goroutine that runs watchStale.
type staleAlert struct {
	cfg     *config.StaleAlert
	from    string // the sender's address, for message ids
	where   string // the page, as staff know it
	send    func(context.Context, smtpmail.Message) error
	tick    time.Duration
	backoff time.Duration
	pending *staleMail
}

// staleMail is an email under way, with the recipients it has yet to reach.
type staleMail struct {
	recovery bool
	since    time.Time // the episode's
	msg      smtpmail.Message
	left     []string
	attempts int
	next     time.Time // real time: when to try again
}

// newStaleAlert is the stale alert cfg asks for, or nil.
func (s *Service) newStaleAlert(cfg *config.Config) *staleAlert {
	a := cfg.Statuspage.StaleAlert
	if a == nil {
		return nil
	}
	smtp := a.StaleSMTP(cfg)
	sender, err := smtpmail.FromConfig(smtp)
	if err != nil {
		s.log.Error("the stale alert cannot send: staff will not be emailed when this page hears nothing from the main site", "err", err)
		return nil
	}
	where := cfg.Site.StatusURL
	if where == "" {
		host, _ := os.Hostname()
		where = strings.TrimSpace(host + " " + cfg.Statuspage.Listen)
	} else if u, err := url.Parse(where); err == nil && u.Host != "" {
		where = u.Host
	}
	from := smtp.From
	if addr, err := mail.ParseAddress(from); err == nil {
		from = addr.Address
	}
	return &staleAlert{cfg: a, from: from, where: where, send: sender.Send, tick: staleTick, backoff: staleBackoff}
}

// watchStale looks at the link every tick until ctx ends. Sending happens
// here, apart from serving: a mail server that hangs holds up nothing but
// the next email.
func (s *Service) watchStale(ctx context.Context) {
	t := time.NewTicker(s.stale.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.staleStep(ctx)
		}
	}
}

// staleStep decides what staff must be told of the link, and sends it.
func (s *Service) staleStep(ctx context.Context) {
	a := s.stale
	p := s.page
	p.mu.RLock()
	live, lost, heard, ep := p.live, p.lostSince, p.heardSince, p.stale
	p.mu.RUnlock()
	now := s.now()
	if lost.IsZero() && !live {
		return // never linked, nothing saved: it has not lost anything yet
	}
	if !lost.IsZero() && !lost.Equal(ep.Since) {
		// A new loss of the link: what was under way about the last one
		// is moot.
		ep, a.pending = staleEpisode{Since: lost}, nil
		s.setStaleEpisode(ep, false)
	}
	switch {
	case !live && !ep.StaleDone && now.Sub(lost) >= a.cfg.After.D():
		if a.pending == nil || a.pending.recovery {
			a.pending = a.staleMail(ep.Since, now)
		}
	case live && !ep.StaleSent.IsZero() && !ep.RecoveryDone:
		if ep.Heard.IsZero() {
			ep.Heard = heard
			if heard.IsZero() || heard.Before(ep.Since) {
				ep.Heard = now
			}
			ep.StaleDone = true // those not reached yet need not be
			s.setStaleEpisode(ep, true)
		}
		if a.pending == nil || !a.pending.recovery {
			a.pending = a.recoveryMail(ep)
		}
	case live:
		if !ep.StaleDone && a.pending != nil {
			// Heard again before anyone was told: nothing to tell.
			ep.StaleDone, a.pending = true, nil
			s.setStaleEpisode(ep, true)
		}
		return
	}
	if a.pending == nil || time.Now().Before(a.pending.next) {
		return
	}
	s.trySend(ctx, &ep)
}

// trySend makes one attempt at the pending email's recipients, and records
// in ep (and the saved state) what came of it.
func (s *Service) trySend(ctx context.Context, ep *staleEpisode) {
	a := s.stale
	m := a.pending
	var left []string
	var lastErr error
	for _, to := range m.left {
		msg := m.msg
		msg.To = to
		sctx, cancel := context.WithTimeout(ctx, staleSendTimeout)
		err := a.send(sctx, msg)
		cancel()
		switch {
		case err == nil:
			if !m.recovery && ep.StaleSent.IsZero() {
				ep.StaleSent = s.now()
				s.setStaleEpisode(*ep, true)
			}
		case bus.IsPermanent(err):
			s.log.Error("the stale alert's mail server refuses a recipient for good", "err", err)
		default:
			left, lastErr = append(left, to), err
		}
	}
	m.left, m.attempts = left, m.attempts+1
	done := len(left) == 0
	if !done && m.attempts >= staleMaxAttempts {
		s.log.Error("giving up on the stale alert's email", "attempts", m.attempts, "err", lastErr)
		done = true
	}
	if !done {
		wait := min(a.backoff<<min(m.attempts-1, 10), staleBackoffMax)
		m.next = time.Now().Add(wait)
		s.log.Warn("the stale alert's email is not sent; retrying", "in", wait, "err", lastErr)
		return
	}
	if m.recovery {
		ep.RecoveryDone = true
	} else {
		ep.StaleDone = true
	}
	a.pending = nil
	s.setStaleEpisode(*ep, true)
}

// setStaleEpisode records ep with the page's state and, when it tells of
// an email, saves the state at once: a restart right after must not send
// it again.
func (s *Service) setStaleEpisode(ep staleEpisode, save bool) {
	s.page.mu.Lock()
	s.page.stale = ep
	s.page.version.Add(1)
	s.page.mu.Unlock()
	if save && s.stateFile != "" {
		if err := s.saveState(s.stateFile); err != nil {
			s.log.Warn("the stale alert's state is not saved", "err", err)
		}
	}
}

func (a *staleAlert) staleMail(since, now time.Time) *staleMail {
	silent := onlineFor(since, now)
	text := fmt.Sprintf(`The status page at %s has heard nothing from Tocsin since %s (%s): the alarm itself may be down, and outages may go unreported.

Check the main site: run `+"`tocsin status`"+` there, and look at its NATS servers and services. If the main site is fine, the link between it and this page is down, and the page shows what it last knew.

This is the one email about it; another comes when the page hears from Tocsin again.
`, a.where, mailStamp(since), silent)
	return &staleMail{
		since: since, left: a.cfg.To,
		msg: smtpmail.Message{
			Subject:   fmt.Sprintf("Tocsin may be down: the status page has heard nothing for %s", silent),
			MessageID: a.messageID(since, "stale"),
			Text:      text,
			Headers:   map[string]string{"X-Tocsin-Alert": "statuspage.stale"},
		},
	}
}

func (a *staleAlert) recoveryMail(ep staleEpisode) *staleMail {
	silent := onlineFor(ep.Since, ep.Heard)
	text := fmt.Sprintf(`The status page at %s heard from Tocsin again at %s, silent for %s (since %s).

While it was silent the page showed what it last knew, and the alarm may have missed outages: check `+"`tocsin status`"+` on the main site.
`, a.where, mailStamp(ep.Heard), silent, mailStamp(ep.Since))
	id := a.messageID(ep.Since, "stale")
	return &staleMail{
		recovery: true, since: ep.Since, left: a.cfg.To,
		msg: smtpmail.Message{
			Subject:   fmt.Sprintf("Tocsin heard again: the status page was silent for %s", silent),
			MessageID: a.messageID(ep.Since, "heard"),
			InReplyTo: id, References: []string{id},
			Text:    text,
			Headers: map[string]string{"X-Tocsin-Alert": "statuspage.stale"},
		},
	}
}

// messageID names one of an episode's emails, the same in every attempt,
// so that a mail client shows a message sent twice once.
func (a *staleAlert) messageID(since time.Time, what string) string {
	domain := "tocsin.invalid"
	if at := strings.LastIndexByte(a.from, '@'); at >= 0 && at < len(a.from)-1 {
		domain = a.from[at+1:]
	}
	return fmt.Sprintf("statuspage-%s-%d@%s", what, since.Unix(), domain)
}

// mailStamp is a time as staff read it in an email.
func mailStamp(t time.Time) string {
	return t.UTC().Format("15:04 UTC on 2 January 2006")
}
