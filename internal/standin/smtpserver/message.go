package smtpserver

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"slices"
	"strings"
)

// Message is one message as the server accepted it: the envelope, the
// bytes, and the parts a test asserts on, decoded.
type Message struct {
	From string   // envelope sender (MAIL FROM)
	To   []string // envelope recipients (RCPT TO), in order
	Raw  []byte   // the message as received, CRLF line endings and all

	Header  mail.Header
	Subject string // RFC 2047 encoded words decoded
	// MessageID, InReplyTo and References are given without their angle
	// brackets. References is split on white space only, so a list that
	// was wrongly separated by commas shows up as ids ending in ">,".
	MessageID  string
	InReplyTo  string
	References []string

	// Text and HTML are the first text/plain and text/html parts that are
	// not attachments, with the transfer encoding undone and CRLF turned
	// into LF; the charset is taken to be UTF-8 and not converted. A
	// message without a Content-Type is text/plain.
	Text string
	HTML string

	TLS      bool   // the message was sent after STARTTLS, or over implicit TLS
	AuthUser string // who authenticated; "" if nobody did
}

func parse(raw []byte) (Message, error) {
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, fmt.Errorf("header: %w", err)
	}
	m := Message{
		Raw:       raw,
		Header:    pm.Header,
		MessageID: stripAngles(pm.Header.Get("Message-Id")),
		InReplyTo: stripAngles(pm.Header.Get("In-Reply-To")),
	}
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject")); err != nil {
		return Message{}, fmt.Errorf("subject: %w", err)
	}
	for _, ref := range strings.Fields(pm.Header.Get("References")) {
		m.References = append(m.References, stripAngles(ref))
	}
	if err := m.walk(textproto.MIMEHeader(pm.Header), pm.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

// walk looks for the text and HTML bodies in one MIME entity, descending
// into multiparts.
func (m *Message) walk(h textproto.MIMEHeader, body io.Reader) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content-type %q: %w", ct, err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", mediaType)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart, not NextPart: NextPart decodes quoted-printable
			// on its own and hides the header, but leaves base64 alone.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w", mediaType, err)
			}
			if err := m.walk(p.Header, p); err != nil {
				return err
			}
		}
	}
	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	var dst *string
	switch {
	case mediaType == "text/plain" && m.Text == "":
		dst = &m.Text
	case mediaType == "text/html" && m.HTML == "":
		dst = &m.HTML
	default:
		return nil
	}
	b, err := io.ReadAll(decodeTransfer(h.Get("Content-Transfer-Encoding"), body))
	if err != nil {
		return fmt.Errorf("%s body: %w", mediaType, err)
	}
	*dst = strings.ReplaceAll(string(b), "\r\n", "\n")
	return nil
}

func decodeTransfer(cte string, r io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		return quotedprintable.NewReader(r)
	case "base64":
		// The decoder skips the CR and LF of folded lines.
		return base64.NewDecoder(base64.StdEncoding, r)
	default: // 7bit, 8bit, binary
		return r
	}
}

func stripAngles(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	return strings.TrimSuffix(id, ">")
}

func cloneMessages(msgs []Message) []Message {
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		m.To = slices.Clone(m.To)
		m.Raw = slices.Clone(m.Raw)
		m.References = slices.Clone(m.References)
		h := make(mail.Header, len(m.Header))
		for k, v := range m.Header {
			h[k] = slices.Clone(v)
		}
		m.Header = h
		out[i] = m
	}
	return out
}
