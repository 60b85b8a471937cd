package check

import (
	"context"
	"net/url"
	"strings"
)

// ftpCheck reads the FTP banner and, when the check names a user, logs in,
// because the FTP failure a hosting provider sees most is not a dead server
// but a broken authentication backend. The user comes from the spec or,
// failing that, from the URL (ftp://user@host); the password only from the
// spec, since a URL travels in events. What the server answers is quoted
// with the password blanked out, should it echo it.
func ftpCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	user := s.Username
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	if strings.ContainsAny(user+s.Password, "\r\n") {
		// It would end the command early and send the rest as another.
		return failure("the FTP username or password contains a line break")
	}
	return r.talk(ctx, u, "21", false, 0, func(cv *conversation) error {
		banner, err := cv.readReply()
		if err != nil {
			return err
		}
		if banner.code != 0 {
			defer cv.bye(ctx, "QUIT", cv.skipReply)
		}
		if banner.code != 220 {
			return failure("unexpected greeting: " + banner.String())
		}
		if user == "" {
			return nil
		}
		rp, err := cv.command("USER " + user)
		if err != nil {
			return err
		}
		if rp.code == 331 {
			if rp, err = cv.command("PASS " + s.Password); err != nil {
				return err
			}
		}
		// 202 answers a PASS the server did not need.
		if rp.code != 230 && rp.code != 202 {
			return failure("login refused: " + said(blankOut(rp.raw(), s.Password)))
		}
		return nil
	})
}

// blankOut blanks out secret wherever text holds it.
func blankOut(text, secret string) string {
	if secret == "" {
		return text
	}
	return strings.ReplaceAll(text, secret, "********")
}
