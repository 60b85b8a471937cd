package check

import (
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
)

func TestIMAPAndPOP3(t *testing.T) {
	t.Parallel()
	// Two days and a bit: ok when warned a day ahead, not a week ahead.
	cert := servertest.NewCert(t, 50*time.Hour)
	d := servertest.StartDovecot(t, servertest.DovecotOptions{Cert: cert})
	trusting := New(cert.Pool)
	systemRoots := New(nil)
	closed, stall := closedPort(t), stalling(t)

	bye := startScripted(t, "* BYE Too many connections from 127.0.0.1\r\n", politely("", ""))
	preauth := startScripted(t, "* PREAUTH [CAPABILITY IMAP4rev1] logged in as tocsin\r\n",
		politely("* BYE Logging out\r\nt1 OK LOGOUT completed\r\n", ""))
	lowerCase := startScripted(t, "* ok imap ready\r\n", politely("* BYE\r\nt1 OK\r\n", ""))
	imapAsPOP3 := startScripted(t, "+OK POP3 ready\r\n", politely("+OK bye\r\n", ""))
	busyPOP3 := startScripted(t, "-ERR [SYS/TEMP] too many connections, try later\r\n", politely("+OK\r\n", ""))
	pop3 := startScripted(t, "+OK\r\n", politely("+OK bye\r\n", ""))
	pop3Prefix := startScripted(t, "+OKAY\r\n", politely("+OK bye\r\n", ""))

	// What Dovecot's two protocols have in common: each works in plain
	// text and over TLS, warns of an expiring certificate, refuses one it
	// cannot trust, and fails on the wrong port, on a refusal and on
	// silence.
	const quick = 300 * time.Millisecond
	dovecot := func(proto, plain, secure, otherPort, otherGreeting string) []mailCase {
		url := func(tls bool, addr string) string {
			if tls {
				return proto + "s://" + addr
			}
			return proto + "://" + addr
		}
		return []mailCase{
			{name: proto + " ok", runner: trusting, spec: Spec{URL: url(false, plain)}},
			{name: proto + "s ok", runner: trusting, spec: Spec{URL: url(true, secure), CertWarnDays: 1}},
			{name: proto + "s certificate expiring", runner: trusting, spec: Spec{URL: url(true, secure), CertWarnDays: 7},
				warning: "certificate expires in 2 days ("},
			{name: proto + "s untrusted certificate", runner: systemRoots, spec: Spec{URL: url(true, secure)},
				reason: "certificate signed by an unknown authority"},
			{name: proto + "s on the plain-text port", runner: trusting, spec: Spec{URL: url(true, plain)},
				reason: "tls: first record does not look like a TLS handshake"},
			{name: proto + " on the other protocol's port", runner: trusting, spec: Spec{URL: url(false, otherPort)},
				reason: "unexpected greeting: " + otherGreeting, partial: true},
			{name: proto + " refused", runner: trusting, spec: Spec{URL: url(false, closed)},
				reason: "connection refused"},
			{name: proto + " silent", runner: trusting, spec: Spec{URL: url(false, stall), Timeout: quick},
				reason: "timeout after 300ms"},
			{name: proto + "s silent", runner: trusting, spec: Spec{URL: url(true, stall), Timeout: quick},
				reason: "timeout after 300ms"},
		}
	}
	cases := append(dovecot("imap", d.IMAP, d.IMAPS, d.POP3, "+OK Dovecot"),
		dovecot("pop3", d.POP3, d.POP3S, d.IMAP, "* OK [CAPABILITY IMAP4rev1")...)
	runMailCases(t, append(cases, []mailCase{
		{name: "imap BYE", runner: trusting, spec: Spec{URL: "imap://" + bye.addr},
			reason: "server refused the connection: * BYE Too many connections from 127.0.0.1", script: bye, sent: nil},
		{name: "imap PREAUTH", runner: trusting, spec: Spec{URL: "imap://" + preauth.addr},
			script: preauth, sent: []string{"t1 LOGOUT"}},
		{name: "imap in lower case", runner: trusting, spec: Spec{URL: "imap://" + lowerCase.addr},
			script: lowerCase, sent: []string{"t1 LOGOUT"}},
		{name: "imap to a POP3 server", runner: trusting, spec: Spec{URL: "imap://" + imapAsPOP3.addr},
			reason: "unexpected greeting: +OK POP3 ready", script: imapAsPOP3, sent: nil},
		{name: "pop3 busy", runner: trusting, spec: Spec{URL: "pop3://" + busyPOP3.addr},
			reason: "unexpected greeting: -ERR [SYS/TEMP] too many connections, try later", script: busyPOP3, sent: nil},
		{name: "pop3 bare +OK", runner: trusting, spec: Spec{URL: "pop3://" + pop3.addr},
			script: pop3, sent: []string{"QUIT"}},
		{name: "pop3 +OK run on", runner: trusting, spec: Spec{URL: "pop3://" + pop3Prefix.addr},
			reason: "unexpected greeting: +OKAY"},
	}...))
}
