package escalator

import (
	"context"
	"errors"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/fbposter"
	"github.com/tocsin-alarm/tocsin/services/escalator/internal/xposter"
)

// providers builds the posters the config names and the deps did not give.
func (e *Escalator) providers() error {
	if x := e.cfg.Providers.X; x != nil && e.x == nil {
		p, err := xposter.New(xposter.Config{
			ConsumerKey: x.ConsumerKey.Reveal(), ConsumerSecret: x.ConsumerSecret.Reveal(),
			Token: x.Token.Reveal(), TokenSecret: x.TokenSecret.Reveal(), APIURL: x.APIURL,
		})
		if err != nil {
			return err
		}
		e.x = fitted{p}
	}
	if f := e.cfg.Providers.Facebook; f != nil && e.fb == nil {
		p, err := fbposter.New(fbposter.Config{PageID: f.PageID, Token: f.Token.Reveal(), APIURL: f.APIURL})
		if err != nil {
			return err
		}
		e.fb = p
	}
	return nil
}

// fitted posts to X within its length, counting links as X does.
type fitted struct{ p *xposter.Poster }

func (f fitted) Post(ctx context.Context, text, replyTo string) (string, error) {
	return f.p.Post(ctx, xposter.Fit(text), replyTo)
}

// isDuplicate reports X refusing a post as a duplicate of an earlier one:
// ours, made before a crash kept it from being recorded.
func isDuplicate(err error) bool { return errors.Is(err, xposter.ErrDuplicate) }

// timed wraps each sender so that every request to a provider is timed.
func (e *Escalator) timed() {
	if e.mailer != nil {
		e.mailer = timedMailer{e.mailer, e.m}
	}
	if e.x != nil {
		e.x = timedX{e.x, e.m}
	}
	if e.fb != nil {
		e.fb = timedPage{e.fb, e.m}
	}
}

type timedMailer struct {
	Mailer
	m *metrics.Metrics
}

func (t timedMailer) Send(ctx context.Context, m smtpmail.Message) error {
	defer t.m.ProviderRequest("datacentre smtp", time.Now())
	return t.Mailer.Send(ctx, m)
}

type timedX struct {
	XPoster
	m *metrics.Metrics
}

func (t timedX) Post(ctx context.Context, text, replyTo string) (string, error) {
	defer t.m.ProviderRequest("x", time.Now())
	return t.XPoster.Post(ctx, text, replyTo)
}

type timedPage struct {
	PagePoster
	m *metrics.Metrics
}

func (t timedPage) Post(ctx context.Context, message, link string) (string, error) {
	defer t.m.ProviderRequest("facebook", time.Now())
	return t.PagePoster.Post(ctx, message, link)
}

func (t timedPage) Comment(ctx context.Context, postID, message string) (string, error) {
	defer t.m.ProviderRequest("facebook", time.Now())
	return t.PagePoster.Comment(ctx, postID, message)
}
