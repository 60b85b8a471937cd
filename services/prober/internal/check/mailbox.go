package check

import (
	"context"
	"net/url"
	"strings"
)

// imapCheck reads the IMAP greeting and logs out. "* OK" is a server ready
// for a login and "* PREAUTH" one that has logged the client in already
// (by its address, say): both serve mail. "* BYE" is a refusal, and its
// text says why; anything else is not an IMAP server.
func imapCheck(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	port, implicit := endpoint(u.Scheme)
	return r.talk(ctx, u, port, implicit, s.CertWarnDays, func(cv *conversation) error {
		line, err := cv.line()
		if err != nil {
			return err
		}
		switch imapStatus(line) {
		case "OK", "PREAUTH":
		case "BYE":
			return failure("server refused the connection: " + said(line))
		default:
			return failure("unexpected greeting: " + said(line))
		}
		cv.bye(ctx, "t1 LOGOUT", func() error {
			for { // an untagged BYE, then the tagged OK
				l, err := cv.line()
				if err != nil || strings.HasPrefix(l, "t1 ") {
					return err
				}
			}
		})
		return nil
	})
}

// imapStatus is the status of an untagged response ("* OK ready"), in upper
// case as IMAP's atoms are case-insensitive, or "" for any other line.
func imapStatus(line string) string {
	rest, ok := strings.CutPrefix(line, "* ")
	if !ok {
		return ""
	}
	word, _, _ := strings.Cut(rest, " ")
	return strings.ToUpper(word)
}

// pop3Check reads the POP3 greeting, which must be +OK, and quits.
func pop3Check(ctx context.Context, r *Runner, u *url.URL, s Spec) error {
	port, implicit := endpoint(u.Scheme)
	return r.talk(ctx, u, port, implicit, s.CertWarnDays, func(cv *conversation) error {
		line, err := cv.line()
		if err != nil {
			return err
		}
		if line != "+OK" && !strings.HasPrefix(line, "+OK ") {
			return failure("unexpected greeting: " + said(line))
		}
		cv.bye(ctx, "QUIT", func() error {
			_, err := cv.line()
			return err
		})
		return nil
	})
}
