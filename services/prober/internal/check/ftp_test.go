package check

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
)

func TestFTP(t *testing.T) {
	const user, pass = "tocsin", "s3cret-pa55"
	f := servertest.StartFTP(t, servertest.FTPOptions{Username: user, Password: pass})
	r := New(nil)
	closed, stall := closedPort(t), stalling(t)

	full := startScripted(t, "421 Too many users, try again later\r\n", politely("221 Bye\r\n", ""))
	anonymousOnly := startScripted(t, "220 ftp.example.net\r\n", politely("221 Bye\r\n", "530 This FTP server is anonymous only.\r\n"))
	needsAccount := startScripted(t, "220 ftp.example.net\r\n", func(cmd string) (string, bool) {
		switch strings.Fields(cmd)[0] {
		case "USER":
			return "331 Password required\r\n", false
		case "PASS":
			return "332 Need account for login.\r\n", false
		}
		return "221 Bye\r\n", true
	})
	// A server that quotes the password back must not get it into an alert.
	echoes := startScripted(t, "220 ftp.example.net\r\n", func(cmd string) (string, bool) {
		verb, arg, _ := strings.Cut(cmd, " ")
		switch verb {
		case "USER":
			return "331 Password required for " + arg + "\r\n", false
		case "PASS":
			return "530 Login incorrect with password " + arg + "\r\n", false
		}
		return "221 Bye\r\n", true
	})
	noPassword := startScripted(t, "220-Welcome\r\n  free text within the banner\r\n220 ready\r\n",
		politely("221 Bye\r\n", "230 Logged in without a password\r\n"))
	mute := startScripted(t, "220 ftp.example.net\r\n", func(string) (string, bool) { return "", false })

	const quick = 300 * time.Millisecond
	runMailCases(t, []mailCase{
		{name: "banner", runner: r, spec: Spec{URL: "ftp://" + f.Addr}},
		{name: "login", runner: r, spec: Spec{URL: "ftp://" + f.Addr, Username: user, Password: pass}},
		{name: "login, user in the URL", runner: r, spec: Spec{URL: "ftp://" + user + "@" + f.Addr, Password: pass}},
		// Pure-FTPd answers a wrong password after 3 to 6 seconds.
		{name: "wrong password", runner: r, spec: Spec{URL: "ftp://" + f.Addr, Username: user, Password: "guess", Timeout: 10 * time.Second},
			reason: "login refused: 530 Login authentication failed"},
		{name: "refused", runner: r, spec: Spec{URL: "ftp://" + closed},
			reason: "connection refused"},
		{name: "silent", runner: r, spec: Spec{URL: "ftp://" + stall, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "silent after USER", runner: r, spec: Spec{URL: "ftp://" + mute.addr, Username: user, Password: pass, Timeout: quick},
			reason: "timeout after 300ms"},
		{name: "server full", runner: r, spec: Spec{URL: "ftp://" + full.addr, Username: user, Password: pass},
			reason: "unexpected greeting: 421 Too many users, try again later", script: full, sent: []string{"QUIT"}},
		{name: "user refused", runner: r, spec: Spec{URL: "ftp://" + anonymousOnly.addr, Username: user, Password: pass},
			reason: "login refused: 530 This FTP server is anonymous only.", script: anonymousOnly, sent: []string{"USER tocsin", "QUIT"}},
		{name: "account needed", runner: r, spec: Spec{URL: "ftp://" + needsAccount.addr, Username: user, Password: pass},
			reason: "login refused: 332 Need account for login.", script: needsAccount, sent: []string{"USER tocsin", "PASS " + pass, "QUIT"}},
		{name: "password echoed", runner: r, spec: Spec{URL: "ftp://" + echoes.addr, Username: user, Password: pass},
			reason: "login refused: 530 Login incorrect with password ********"},
		{name: "no password needed", runner: r, spec: Spec{URL: "ftp://" + noPassword.addr, Username: user, Password: pass},
			script: noPassword, sent: []string{"USER tocsin", "QUIT"}},
		{name: "line break in the user", runner: r, spec: Spec{URL: "ftp://" + closed, Username: "tocsin\r\nDELE x", Password: pass},
			reason: "the FTP username or password contains a line break"},
	})
}
