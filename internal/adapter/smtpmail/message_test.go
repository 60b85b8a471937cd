package smtpmail_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/adapter/smtpmail"
)

var date = time.Date(2026, 11, 21, 12, 5, 0, 0, time.UTC)

func TestBuildBytes(t *testing.T) {
	tests := []struct {
		name string
		from string
		msg  smtpmail.Message
		want string
	}{
		{
			name: "text only",
			from: "alarm@tocsin.example",
			msg: smtpmail.Message{
				To:        "ops@customer.example",
				Subject:   "web-3 is down",
				MessageID: "incident-42.1@tocsin.example",
				Text:      "web-3 stopped answering at 12:00 UTC.",
			},
			want: "Auto-Submitted: auto-generated\r\n" +
				"Date: Sat, 21 Nov 2026 12:05:00 +0000\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Message-ID: <incident-42.1@tocsin.example>\r\n" +
				"Subject: web-3 is down\r\n" +
				"From: <alarm@tocsin.example>\r\n" +
				"To: <ops@customer.example>\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"Content-Type: text/plain; charset=UTF-8\r\n" +
				"\r\n" +
				"web-3 stopped answering at 12:00 UTC.",
		},
		{
			name: "follow-up with HTML, names and extra headers",
			from: "Tocsin Alarm <alarm@tocsin.example>",
			msg: smtpmail.Message{
				To:        "ops@customer.example",
				ToName:    `Customer Ops, "Night"`,
				Subject:   "web-3 is down — since 12:00",
				MessageID: "<incident-42.3@tocsin.example>", // brackets are tolerated
				InReplyTo: "incident-42.2@tocsin.example",
				References: []string{
					"incident-42.1@tocsin.example",
					"incident-42.2@tocsin.example",
				},
				Text:    "web-3 stopped answering at 12:00 UTC.\nNext update by 12:30.\n",
				HTML:    "<p>web-3 stopped answering at 12:00 UTC.</p>\n",
				Headers: map[string]string{"x-tocsin-incident": "42", "X-Tocsin-Update": "3"},
			},
			want: "Auto-Submitted: auto-generated\r\n" +
				"Date: Sat, 21 Nov 2026 12:05:00 +0000\r\n" +
				"In-Reply-To: <incident-42.2@tocsin.example>\r\n" +
				"MIME-Version: 1.0\r\n" +
				"Message-ID: <incident-42.3@tocsin.example>\r\n" +
				"References: <incident-42.1@tocsin.example>\r\n" +
				" <incident-42.2@tocsin.example>\r\n" +
				"Subject: =?UTF-8?q?web-3_is_down_=E2=80=94_since_12:00?=\r\n" +
				"X-Tocsin-Incident: 42\r\n" +
				"X-Tocsin-Update: 3\r\n" +
				"From: \"Tocsin Alarm\" <alarm@tocsin.example>\r\n" +
				"To: \"Customer Ops, \\\"Night\\\"\" <ops@customer.example>\r\n" +
				"Content-Type: multipart/alternative;\r\n" +
				" boundary=BOUNDARY\r\n" +
				"\r\n" +
				"--BOUNDARY\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"Content-Type: text/plain; charset=UTF-8\r\n" +
				"\r\n" +
				"web-3 stopped answering at 12:00 UTC.\r\n" +
				"Next update by 12:30.\r\n" +
				"\r\n" +
				"--BOUNDARY\r\n" +
				"Content-Transfer-Encoding: quoted-printable\r\n" +
				"Content-Type: text/html; charset=UTF-8\r\n" +
				"\r\n" +
				"<p>web-3 stopped answering at 12:00 UTC.</p>\r\n" +
				"\r\n" +
				"--BOUNDARY--\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := smtpmail.Build(tt.from, tt.msg, date)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			msg.SetBoundary("BOUNDARY") // random otherwise
			var buf bytes.Buffer
			if _, err := msg.WriteTo(&buf); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildFoldsLineBreaksInSubjectAndHeaders(t *testing.T) {
	msg, err := smtpmail.Build("alarm@tocsin.example", smtpmail.Message{
		To:        "ops@customer.example",
		Subject:   "web-3 is down\r\nBcc: everyone@example.com",
		MessageID: "a@tocsin.example",
		Text:      "x",
		Headers:   map[string]string{"X-Tocsin-Incident": "42\nBcc: everyone@example.com"},
	}, date)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(buf.String(), "\r\n") {
		if strings.HasPrefix(line, "Bcc:") {
			t.Errorf("a line break in a value started a header of its own:\n%s", buf.String())
		}
	}
}

func TestBuildRefusesBadMessages(t *testing.T) {
	good := smtpmail.Message{To: "ops@customer.example", MessageID: "a@tocsin.example", Text: "x"}
	tests := []struct {
		name   string
		change func(m *smtpmail.Message)
		want   []string // in the error
	}{
		{"no recipient", func(m *smtpmail.Message) { m.To = "" }, []string{"recipient address"}},
		{"bad recipient", func(m *smtpmail.Message) { m.To = "ops at customer" }, []string{`recipient address "ops at customer"`}},
		{"no message id", func(m *smtpmail.Message) { m.MessageID = "" }, []string{"message id: empty"}},
		{"message id without @", func(m *smtpmail.Message) { m.MessageID = "incident-42" }, []string{"message id", "left@right"}},
		{"message id with a space", func(m *smtpmail.Message) { m.MessageID = "a b@c" }, []string{"message id", "' '"}},
		{"bad in-reply-to", func(m *smtpmail.Message) { m.InReplyTo = "x" }, []string{"in-reply-to"}},
		{"bad reference", func(m *smtpmail.Message) { m.References = []string{"a@b", "a@b, c@d"} }, []string{"references"}},
		{"no text", func(m *smtpmail.Message) { m.Text = "" }, []string{"text body is empty"}},
		{"bad header name", func(m *smtpmail.Message) { m.Headers = map[string]string{"X Bad": "1"} }, []string{`"X Bad"`}},
		{"reserved header", func(m *smtpmail.Message) { m.Headers = map[string]string{"message-id": "<x@y>"} }, []string{"Message-Id is set by the sender"}},
		{"structural header", func(m *smtpmail.Message) { m.Headers = map[string]string{"Content-Type": "text/html"} }, []string{"Content-Type is set by the sender"}},
		{
			"every problem at once",
			func(m *smtpmail.Message) { m.To, m.MessageID, m.Text = "", "", "" },
			[]string{"recipient address", "message id", "text body"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := good
			tt.change(&m)
			_, err := smtpmail.Build("alarm@tocsin.example", m, date)
			if err == nil {
				t.Fatal("got no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
