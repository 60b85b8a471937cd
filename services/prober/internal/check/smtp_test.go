package check

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
)

func TestSMTP(t *testing.T) {
	plain := smtpserver.Start(t, smtpserver.Options{})
	startTLS := smtpserver.Start(t, smtpserver.Options{TLS: true})
	implicit := smtpserver.Start(t, smtpserver.Options{ImplicitTLS: true})
	trusting := New(trust(t, startTLS.CertPEM, implicit.CertPEM))
	systemRoots := New(nil)
	closed, stall := closedPort(t), stalling(t)

	const ehlo = "250-mx.example.net\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
	rude := startScripted(t, "554 5.3.2 not accepting mail\r\n", politely("221 2.0.0 Bye\r\n", "503 5.5.1 go away\r\n"))
	multiLine := startScripted(t, "220-mx.example.net ESMTP\r\n220-no UCE\r\n220 ready\r\n", politely("221 2.0.0 Bye\r\n", ehlo))
	ssh := startScripted(t, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", politely("", "Invalid SSH identification string.\r\n"))
	noEHLO := startScripted(t, "220 old.example.net\r\n", politely("221 Bye\r\n", "502 5.5.1 command not recognised\r\n"))
	busyTLS := startScripted(t, "220 mx.example.net\r\n", func(cmd string) (string, bool) {
		switch cmd {
		case "STARTTLS":
			return "454 4.7.0 TLS not available due to temporary reason\r\n", false
		case "QUIT":
			return "221 Bye\r\n", true
		}
		return ehlo, false
	})
	injecting := startScripted(t, "220 mx.example.net\r\n", func(cmd string) (string, bool) {
		if cmd == "STARTTLS" {
			return "220 2.0.0 go ahead\r\n250 injected before the handshake\r\n", false
		}
		return ehlo, false
	})
	mute := startScripted(t, "220 mx.example.net\r\n", func(string) (string, bool) { return "", false })
	hangsUp := startScripted(t, "220 mx.example.net\r\n", func(string) (string, bool) { return "", true })
	chatty := startScripted(t, strings.Repeat("220-"+strings.Repeat("x", 1000)+"\r\n", 100), politely("221 Bye\r\n", ""))

	const quick = 300 * time.Millisecond
	runMailCases(t, []mailCase{
		{name: "ok", runner: trusting, spec: Spec{URL: "smtp://" + plain.Addr}},
		{name: "starttls ok", runner: trusting, spec: Spec{URL: "smtp://" + startTLS.Addr, StartTLS: true}},
		{name: "starttls not asked for", runner: systemRoots, spec: Spec{URL: "smtp://" + startTLS.Addr}},
		{name: "starttls not offered", runner: trusting, spec: Spec{URL: "smtp://" + plain.Addr, StartTLS: true},
			reason: "STARTTLS not offered"},
		{name: "starttls untrusted certificate", runner: systemRoots, spec: Spec{URL: "smtp://" + startTLS.Addr, StartTLS: true},
			reason: "certificate signed by an unknown authority"},
		// smtpserver's certificates last a day: "expires in 24h0m0s".
		{name: "starttls certificate expiring", runner: trusting, spec: Spec{URL: "smtp://" + startTLS.Addr, StartTLS: true, CertWarnDays: 3},
			warning: "certificate expires in "},
		{name: "smtps ok", runner: trusting, spec: Spec{URL: "smtps://" + implicit.Addr}},
		{name: "smtps ignores StartTLS", runner: trusting, spec: Spec{URL: "smtps://" + implicit.Addr, StartTLS: true}},
		{name: "smtps untrusted certificate", runner: systemRoots, spec: Spec{URL: "smtps://" + implicit.Addr},
			reason: "certificate signed by an unknown authority"},
		{name: "smtps certificate expiring", runner: trusting, spec: Spec{URL: "smtps://" + implicit.Addr, CertWarnDays: 2},
			warning: "certificate expires in "},
		{name: "smtps to a plain-text server", runner: trusting, spec: Spec{URL: "smtps://" + plain.Addr},
			reason: "tls: first record does not look like a TLS handshake"},
		{name: "refused", runner: trusting, spec: Spec{URL: "smtp://" + closed},
			reason: "connection refused"},
		{name: "smtps refused", runner: trusting, spec: Spec{URL: "smtps://" + closed},
			reason: "connection refused"},
		{name: "silent", runner: trusting, spec: Spec{URL: "smtp://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "smtps silent", runner: trusting, spec: Spec{URL: "smtps://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "refusing greeting", runner: trusting, spec: Spec{URL: "smtp://" + rude.addr},
			reason: "unexpected greeting: 554 5.3.2 not accepting mail", script: rude, sent: []string{"QUIT"}},
		{name: "multi-line greeting", runner: trusting, spec: Spec{URL: "smtp://" + multiLine.addr},
			script: multiLine, sent: []string{"EHLO tocsin-check", "QUIT"}},
		{name: "not SMTP", runner: trusting, spec: Spec{URL: "smtp://" + ssh.addr},
			reason: "unexpected greeting: SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", script: ssh, sent: nil},
		{name: "EHLO refused", runner: trusting, spec: Spec{URL: "smtp://" + noEHLO.addr},
			reason: "EHLO refused: 502 5.5.1 command not recognised", script: noEHLO, sent: []string{"EHLO tocsin-check", "QUIT"}},
		{name: "STARTTLS refused", runner: trusting, spec: Spec{URL: "smtp://" + busyTLS.addr, StartTLS: true},
			reason: "STARTTLS refused: 454 4.7.0 TLS not available due to temporary reason",
			script: busyTLS, sent: []string{"EHLO tocsin-check", "STARTTLS", "QUIT"}},
		{name: "answer injected before the handshake", runner: trusting, spec: Spec{URL: "smtp://" + injecting.addr, StartTLS: true},
			reason: "the server sent more after agreeing to STARTTLS"},
		{name: "silent after greeting", runner: trusting, spec: Spec{URL: "smtp://" + mute.addr, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "hangs up after greeting", runner: trusting, spec: Spec{URL: "smtp://" + hangsUp.addr},
			reason: "the server closed the connection"},
		{name: "endless greeting", runner: trusting, spec: Spec{URL: "smtp://" + chatty.addr},
			reason: "the server sent more than 64 KiB"},
	})
}
