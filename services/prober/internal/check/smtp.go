package check

import (
	"context"
	"net/url"
	"strings"
)

// ehloName is how a check introduces itself, so that a mail server's log
// tells the prober's visits from mail.
const ehloName = "tocsin-check"

// smtpCheck talks to a mail server as another mail server would: it reads
// the banner and says EHLO and, when the spec asks, upgrades with STARTTLS
// and verifies the certificate, because a broken certificate on port 25
// shows up only as mail that stops arriving. smtps is the same over
// implicit TLS, the port 465 style.
func smtpCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	port, implicit := endpoint(u.Scheme)
	return r.talk(ctx, u, port, implicit, s.CertWarnDays, func(cv *conversation) error {
		greeting, err := cv.readReply()
		if err != nil {
			return err
		}
		if greeting.code != 0 {
			// Even after a 554 greeting the server waits for QUIT
			// (RFC 5321, 3.1).
			defer cv.bye(ctx, "QUIT", cv.skipReply)
		}
		if greeting.code != 220 {
			return failure("unexpected greeting: " + greeting.String())
		}
		ext, err := cv.ehlo()
		if err != nil {
			return err
		}
		if !s.StartTLS || implicit {
			return nil
		}
		if !ext["STARTTLS"] {
			return failure("STARTTLS not offered")
		}
		rp, err := cv.command("STARTTLS")
		if err != nil {
			return err
		}
		if rp.code != 220 {
			return failure("STARTTLS refused: " + rp.String())
		}
		if err := cv.startTLS(ctx, r, u.Hostname()); err != nil {
			return err
		}
		// What the server offered in plain text no longer holds (RFC 3207,
		// 4.2); asking again is also the first exchange under encryption.
		_, err = cv.ehlo()
		return err
	})
}

// ehlo introduces the check and returns the extensions the server offers,
// by keyword in upper case.
func (cv *conversation) ehlo() (map[string]bool, error) {
	rp, err := cv.command("EHLO " + ehloName)
	if err != nil {
		return nil, err
	}
	if rp.code != 250 {
		return nil, failure("EHLO refused: " + rp.String())
	}
	ext := map[string]bool{}
	for _, l := range rp.lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			ext[strings.ToUpper(f[0])] = true
		}
	}
	return ext, nil
}
