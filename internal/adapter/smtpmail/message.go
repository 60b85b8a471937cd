package smtpmail

import (
	"errors"
	"fmt"
	netmail "net/mail"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one email to one recipient.
type Message struct {
	To     string // the recipient's address, "ops@example.com"
	ToName string // optional display name, "Customer Ops"

	Subject string
	// MessageID identifies this message, without angle brackets. It is
	// required and sent exactly as given, so that a message sent again
	// after a failed attempt carries the same id and mail clients show it
	// once.
	MessageID string
	// InReplyTo and References, without angle brackets, let mail clients
	// put every message about one incident in one thread.
	InReplyTo  string
	References []string

	Text string // required
	// HTML is optional; when set, the message is multipart/alternative
	// with Text as the plain alternative.
	HTML string

	// Headers are extra header fields, such as X-Tocsin-Incident. They
	// may not replace a field that Build sets itself or one that
	// describes the MIME structure.
	Headers map[string]string
}

// Fields Build owns; a caller setting one would send a message with the
// field twice or a broken structure.
var reservedHeaders = map[string]bool{
	"Auto-Submitted": true, "Bcc": true, "Cc": true, "Date": true, "From": true,
	"In-Reply-To": true, "Message-Id": true, "Mime-Version": true, "References": true,
	"Return-Path": true, "Sender": true, "Subject": true, "To": true,
}

// Build turns m into a go-mail message from the given sender, dated date.
// It does no I/O, so the exact bytes of a message can be tested; an error
// means m itself is unusable, and sending it again would not help.
func Build(from string, m Message, date time.Time) (*mail.Msg, error) {
	sender, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("sender address %q: %w", from, err)
	}
	var problems []error
	rcpt, err := netmail.ParseAddress(m.To)
	if err != nil {
		problems = append(problems, fmt.Errorf("recipient address %q: %w", m.To, err))
	}
	id, err := msgID(m.MessageID)
	if err != nil {
		problems = append(problems, fmt.Errorf("message id: %w", err))
	}
	var inReplyTo string
	if m.InReplyTo != "" {
		if inReplyTo, err = msgID(m.InReplyTo); err != nil {
			problems = append(problems, fmt.Errorf("in-reply-to: %w", err))
		}
	}
	refs := make([]string, 0, len(m.References))
	for _, r := range m.References {
		ref, err := msgID(r)
		if err != nil {
			problems = append(problems, fmt.Errorf("references: %w", err))
			continue
		}
		refs = append(refs, "<"+ref+">")
	}
	if m.Text == "" {
		problems = append(problems, errors.New("text body is empty"))
	}
	extra := make(map[string]string, len(m.Headers))
	for name, value := range m.Headers {
		if !validFieldName(name) {
			problems = append(problems, fmt.Errorf("header name %q is not a valid field name", name))
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		if reservedHeaders[key] || strings.HasPrefix(key, "Content-") {
			problems = append(problems, fmt.Errorf("header %s is set by the sender itself", key))
			continue
		}
		extra[key] = oneLine(value)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	msg.FromMailAddress(sender)
	name := rcpt.Name
	if m.ToName != "" {
		name = oneLine(m.ToName)
	}
	msg.ToMailAddress(&netmail.Address{Name: name, Address: rcpt.Address})
	msg.Subject(oneLine(m.Subject))
	msg.SetDateWithValue(date)
	msg.SetMessageIDWithValue(id)
	if inReplyTo != "" {
		msg.SetGenHeader(mail.HeaderInReplyTo, "<"+inReplyTo+">")
	}
	if len(refs) > 0 {
		// One value: go-mail joins several with ", ", but References is
		// a list separated by white space (RFC 5322, section 3.6.4).
		msg.SetGenHeader(mail.HeaderReferences, strings.Join(refs, " "))
	}
	// RFC 3834: vacation responders and the like must not answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		msg.SetGenHeader(mail.Header(k), extra[k])
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// msgID accepts an id with or without angle brackets and returns it
// without. It insists on the id-left@id-right form: some providers replace
// a Message-ID they do not like, and the threading is lost.
func msgID(id string) (string, error) {
	id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
	if id == "" {
		return "", errors.New("empty")
	}
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") {
		return "", fmt.Errorf("%q is not of the form left@right", id)
	}
	for _, r := range id {
		if r <= ' ' || r >= 0x7f || r == '<' || r == '>' || r == '"' || r == '\\' || r == ',' {
			return "", fmt.Errorf("%q contains %q", id, r)
		}
	}
	return id, nil
}

// validFieldName reports whether name may be a header field name
// (RFC 5322, section 3.6.8: printable ASCII except the colon).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// oneLine folds line breaks into spaces. A subject or header value with a
// line break in it is a mistake upstream, but an alarm is worth more sent
// with a slightly odd subject than refused.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }), " ")
}
