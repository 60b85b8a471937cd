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

	const quick = 300 * time.Millisecond
	runMailCases(t, []mailCase{
		{name: "imap ok", runner: trusting, spec: Spec{URL: "imap://" + d.IMAP}},
		{name: "imaps ok", runner: trusting, spec: Spec{URL: "imaps://" + d.IMAPS, CertWarnDays: 1}},
		{name: "imaps certificate expiring", runner: trusting, spec: Spec{URL: "imaps://" + d.IMAPS, CertWarnDays: 7},
			warning: "certificate expires in 2 days ("},
		{name: "imaps untrusted certificate", runner: systemRoots, spec: Spec{URL: "imaps://" + d.IMAPS},
			reason: "certificate signed by an unknown authority"},
		{name: "imaps on the plain-text port", runner: trusting, spec: Spec{URL: "imaps://" + d.IMAP},
			reason: "tls: first record does not look like a TLS handshake"},
		{name: "imap on the POP3 port", runner: trusting, spec: Spec{URL: "imap://" + d.POP3},
			reason: "unexpected greeting: +OK Dovecot", partial: true},
		{name: "imap refused", runner: trusting, spec: Spec{URL: "imap://" + closed},
			reason: "connection refused"},
		{name: "imap silent", runner: trusting, spec: Spec{URL: "imap://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "imaps silent", runner: trusting, spec: Spec{URL: "imaps://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "imap BYE", runner: trusting, spec: Spec{URL: "imap://" + bye.addr},
			reason: "server refused the connection: * BYE Too many connections from 127.0.0.1", script: bye, sent: nil},
		{name: "imap PREAUTH", runner: trusting, spec: Spec{URL: "imap://" + preauth.addr},
			script: preauth, sent: []string{"t1 LOGOUT"}},
		{name: "imap in lower case", runner: trusting, spec: Spec{URL: "imap://" + lowerCase.addr},
			script: lowerCase, sent: []string{"t1 LOGOUT"}},
		{name: "imap to a POP3 server", runner: trusting, spec: Spec{URL: "imap://" + imapAsPOP3.addr},
			reason: "unexpected greeting: +OK POP3 ready", script: imapAsPOP3, sent: nil},

		{name: "pop3 ok", runner: trusting, spec: Spec{URL: "pop3://" + d.POP3}},
		{name: "pop3s ok", runner: trusting, spec: Spec{URL: "pop3s://" + d.POP3S, CertWarnDays: 1}},
		{name: "pop3s certificate expiring", runner: trusting, spec: Spec{URL: "pop3s://" + d.POP3S, CertWarnDays: 7},
			warning: "certificate expires in 2 days ("},
		{name: "pop3s untrusted certificate", runner: systemRoots, spec: Spec{URL: "pop3s://" + d.POP3S},
			reason: "certificate signed by an unknown authority"},
		{name: "pop3 on the IMAP port", runner: trusting, spec: Spec{URL: "pop3://" + d.IMAP},
			reason: "unexpected greeting: * OK [CAPABILITY IMAP4rev1", partial: true},
		{name: "pop3 refused", runner: trusting, spec: Spec{URL: "pop3://" + closed},
			reason: "connection refused"},
		{name: "pop3 silent", runner: trusting, spec: Spec{URL: "pop3://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "pop3s silent", runner: trusting, spec: Spec{URL: "pop3s://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "pop3 busy", runner: trusting, spec: Spec{URL: "pop3://" + busyPOP3.addr},
			reason: "unexpected greeting: -ERR [SYS/TEMP] too many connections, try later", script: busyPOP3, sent: nil},
		{name: "pop3 bare +OK", runner: trusting, spec: Spec{URL: "pop3://" + pop3.addr},
			script: pop3, sent: []string{"QUIT"}},
		{name: "pop3 +OK run on", runner: trusting, spec: Spec{URL: "pop3://" + pop3Prefix.addr},
			reason: "unexpected greeting: +OKAY"},
	})
}
