package smtpserver

import (
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// RFC 3207 and RFC 4954 name 530 for "not before STARTTLS" and "not before
// AUTH"; go-smtp's own ErrAuthRequired answers 502.
var (
	errTLSRequired = &smtp.SMTPError{
		Code:         530,
		EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message:      "Must issue a STARTTLS command first",
	}
	errAuthRequired = &smtp.SMTPError{
		Code:         530,
		EnhancedCode: smtp.EnhancedCode{5, 7, 0},
		Message:      "Authentication required",
	}
)

type backend struct{ s *Server }

// NewSession is called on every HELO/EHLO, and again after STARTTLS, so the
// TLS state seen here is the one the message travels under.
func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, tls: isTLS}, nil
}

type session struct {
	s        *Server
	tls      bool
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(ss.s.opts.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(ss.s.opts.Password)) == 1
		if !userOK || !passOK || (identity != "" && identity != username) {
			// An *smtp.SMTPError keeps its code; any other error would
			// be answered with 454, a transient failure.
			return smtp.ErrAuthFailed
		}
		ss.authUser = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.RequireTLS && !ss.tls {
		return errTLSRequired
	}
	if ss.s.opts.Username != "" && ss.authUser == "" {
		return errAuthRequired
	}
	ss.from = from
	ss.to = nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.failure(); err != nil {
		return err
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.s.failure(); err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		// A strict server makes a malformed message fail the test that
		// sent it, instead of a later assertion on a half-parsed one.
		return &smtp.SMTPError{
			Code:         554,
			EnhancedCode: smtp.EnhancedCode{5, 6, 0},
			Message:      fmt.Sprintf("Message not parsable: %v", err),
		}
	}
	m.From = ss.from
	m.To = append([]string(nil), ss.to...)
	m.TLS = ss.tls
	m.AuthUser = ss.authUser
	ss.s.store(m)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error { return nil }
