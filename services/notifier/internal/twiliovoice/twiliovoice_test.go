package twiliovoice_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest/twiliotest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliovoice"
)

const (
	token  = "f00dfeedf00dfeedf00dfeedf00dfeed"
	caller = "+447700900999"
	rcpt   = "+447700900001"
	masked = "+44…01"
	gather = "https://tocsin.example/twilio/voice/20261121-abc/1f2e3d/s1gn4ture"
)

var (
	account = "AC" + strings.Repeat("5e", 16)
	// secrets are what no error may show: the auth token, the number in
	// full, the signed gather URL.
	secrets = []string{token, rcpt, strings.TrimPrefix(rcpt, "+"), gather}
)

func config(s *twilioapi.Server) twiliovoice.Config {
	return twiliovoice.Config{Account: twiliorest.Account{SID: account, AuthToken: token, APIURL: s.URL, Timeout: 5 * time.Second}, From: caller}
}

func newCaller(t *testing.T, cfg twiliovoice.Config) *twiliovoice.Caller {
	return providertest.New(t, twiliovoice.New, cfg)
}

func ctx(t *testing.T) context.Context { return providertest.Context(t) }

// TestTwiML holds, byte for byte, the document a call runs.
func TestTwiML(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?><Response><Gather numDigits="1" action="`
	const tail = `<Say>Press 1 to acknowledge.</Say></Gather><Say>No key pressed. Goodbye.</Say></Response>`
	tests := []struct {
		name, text, url, want string
	}{
		{"plain", "web-3 is down", gather,
			head + gather + `" method="POST"><Say>web-3 is down</Say><Pause length="1"/><Say>web-3 is down</Say>` + tail},
		{"markup in a server name is text", `server <&"'> is down`, gather,
			head + gather + `" method="POST"><Say>server &lt;&amp;&#34;&#39;&gt; is down</Say><Pause length="1"/>` +
				`<Say>server &lt;&amp;&#34;&#39;&gt; is down</Say>` + tail},
		{"an injected verb stays words", `x</Say><Dial>+15005550006</Dial><Say>`, gather,
			head + gather + `" method="POST"><Say>x&lt;/Say&gt;&lt;Dial&gt;+15005550006&lt;/Dial&gt;&lt;Say&gt;</Say><Pause length="1"/>` +
				`<Say>x&lt;/Say&gt;&lt;Dial&gt;+15005550006&lt;/Dial&gt;&lt;Say&gt;</Say>` + tail},
		{"a query and a quote in the URL", "down", `https://t.example/g?a=1&b="2"`,
			head + `https://t.example/g?a=1&amp;b=&#34;2&#34;" method="POST"><Say>down</Say><Pause length="1"/><Say>down</Say>` + tail},
		{"line breaks and runs of spaces are one space", "web-3\n is   down\t\r\nsince 12:00", gather,
			head + gather + `" method="POST"><Say>web-3 is down since 12:00</Say><Pause length="1"/><Say>web-3 is down since 12:00</Say>` + tail},
		{"a character XML cannot hold is replaced", "bell\x07 rang", gather,
			head + gather + `" method="POST"><Say>bell` + "\uFFFD" + ` rang</Say><Pause length="1"/><Say>bell` + "\uFFFD" + ` rang</Say>` + tail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := twiliovoice.TwiML(tt.text, tt.url)
			if got != tt.want {
				t.Errorf("TwiML:\n got %s\nwant %s", got, tt.want)
			}
			action, method, err := twilioapi.GatherAction(got)
			if err != nil || action != tt.url || method != "POST" {
				t.Errorf("read back: action %q method %q err %v", action, method, err)
			}
		})
	}
}

func TestTwiMLWithoutGather(t *testing.T) {
	got := twiliovoice.TwiML("db-1 <&> down", "")
	want := `<?xml version="1.0" encoding="UTF-8"?><Response><Say>db-1 &lt;&amp;&gt; down</Say><Pause length="1"/>` +
		`<Say>db-1 &lt;&amp;&gt; down</Say><Say>Acknowledge by text message or by the link in your email.</Say></Response>`
	if got != want {
		t.Errorf("TwiML:\n got %s\nwant %s", got, want)
	}
	s := twilioapi.Start(t, account, token)
	if _, err := newCaller(t, config(s)).Call(ctx(t), rcpt, "db-1 down", ""); err != nil {
		t.Fatalf("a call without a gather URL: %v", err)
	}
	if calls := s.Calls(); len(calls) != 1 || strings.Contains(calls[0].TwiML, "Gather") {
		t.Errorf("calls %+v", calls)
	}
}

func TestTwiMLLongTextCut(t *testing.T) {
	for _, text := range []string{strings.Repeat("web-3 is down ", 400), strings.Repeat("&", 3000), strings.Repeat("ü", 2000)} {
		got := twiliovoice.TwiML(text, gather)
		if n := utf8.RuneCountInString(got); n > twiliovoice.MaxTwiML || n < twiliovoice.MaxTwiML-20 {
			t.Errorf("%d characters, want just under %d", n, twiliovoice.MaxTwiML)
		}
		if !strings.Contains(got, "...</Say><Pause") || !strings.Contains(got, twiliovoice.Prompt) {
			t.Errorf("cut text lost its dots or the prompt: %s", got[len(got)-200:])
		}
		if _, _, err := twilioapi.GatherAction(got); err != nil {
			t.Errorf("cut document: %v", err)
		}
	}
}

// TestRequestOnTheWire holds, byte for byte, what Call puts on the wire.
func TestRequestOnTheWire(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	cfg := config(s)
	cfg.StatusCallback = "https://tocsin.example/twilio/call-status"
	sid, err := newCaller(t, cfg).Call(ctx(t), rcpt, "web-3 is down", gather)
	if err != nil {
		t.Fatal(err)
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].SID != sid {
		t.Fatalf("sent %s, stand-in has %+v", sid, calls)
	}
	want := "From=%2B447700900999&StatusCallback=https%3A%2F%2Ftocsin.example%2Ftwilio%2Fcall-status&Timeout=25&To=%2B447700900001" +
		"&Twiml=%3C%3Fxml+version%3D%221.0%22+encoding%3D%22UTF-8%22%3F%3E%3CResponse%3E%3CGather+numDigits%3D%221%22+action%3D%22" +
		"https%3A%2F%2Ftocsin.example%2Ftwilio%2Fvoice%2F20261121-abc%2F1f2e3d%2Fs1gn4ture%22+method%3D%22POST%22%3E" +
		"%3CSay%3Eweb-3+is+down%3C%2FSay%3E%3CPause+length%3D%221%22%2F%3E%3CSay%3Eweb-3+is+down%3C%2FSay%3E" +
		"%3CSay%3EPress+1+to+acknowledge.%3C%2FSay%3E%3C%2FGather%3E%3CSay%3ENo+key+pressed.+Goodbye.%3C%2FSay%3E%3C%2FResponse%3E"
	if calls[0].Raw != want {
		t.Errorf("body on the wire:\n got %s\nwant %s", calls[0].Raw, want)
	}
	if got, want := calls[0].Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte(account+":"+token)); got != want {
		t.Errorf("Authorization = %q", got)
	}
	if ua := calls[0].Header.Get("User-Agent"); !strings.HasPrefix(ua, "twilio-go/") || !strings.HasSuffix(ua, " tocsin") {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestFailures(t *testing.T) {
	twiliotest.Failures(t, twiliotest.Adapter{
		Account: account, Token: token, Prefix: "twilio: call " + masked + ": ",
		Secrets: secrets,
		Send: func(t *testing.T, s *twilioapi.Server) error {
			_, err := newCaller(t, config(s)).Call(ctx(t), rcpt, "web-3 is down", gather)
			return err
		},
	}, append(twiliotest.Common(), []twiliotest.Failure{
		{Name: "number refused, quoted", Fault: twilioapi.Fault{Status: 400, Code: 21211, Message: "The 'To' number " + rcpt + " is not a valid phone number."},
			Status: 400, Code: 21211, Text: "The 'To' number " + masked + " is not a valid phone number."},
		{Name: "URL refused, quoted", Fault: twilioapi.Fault{Status: 400, Code: 21205, Message: "Url is not a valid URL: " + gather},
			Status: 400, Code: 21205, Text: "Url is not a valid URL: [gather URL]"},
	}...))
}

// TestRefusedByTheStandIn: the stand-in's own checks, as Twilio's, refuse
// for good.
func TestRefusedByTheStandIn(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	cfg := config(s)
	cfg.AuthToken = "badbadbadbadbadbadbadbadbadbad00"
	_, err := newCaller(t, cfg).Call(ctx(t), rcpt, "x", gather)
	if e := providertest.ProviderError(t, err); e.Status != 401 || twiliotest.Code(err) != 20003 || e.Retry {
		t.Errorf("wrong token: %v, want a permanent 401", err)
	}
	providertest.NoSecrets(t, err, cfg.AuthToken)
	if len(s.Calls()) != 0 {
		t.Errorf("calls placed: %+v", s.Calls())
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	c := newCaller(t, config(s))
	tests := []struct{ name, to, text, url, want string }{
		{"national number", "07700900001", "x", gather, "not in international form"},
		{"empty text", rcpt, " \n", gather, "the message is empty"},
		{"relative gather URL", rcpt, "x", "/twilio/voice/x", "the gather URL is not an absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Call(ctx(t), tt.to, tt.text, tt.url)
			providertest.RefusedBeforeSending(t, err, tt.want)
			noSecrets(t, err)
			providertest.NoSecrets(t, err, "7700900001")
		})
	}
	if n := len(s.Attempts()); n != 0 {
		t.Errorf("%d requests reached Twilio, want none", n)
	}
}

func TestStallEndsAtTheTimeout(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	s.Fail(twilioapi.Stall())
	cfg := config(s)
	cfg.Timeout = 300 * time.Millisecond
	_, err := newCaller(t, cfg).Call(ctx(t), rcpt, "x", gather)
	if e := providertest.ProviderError(t, err); e.Status != 0 || !e.Retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a retryable timeout", err)
	}
	if !strings.Contains(err.Error(), "twilio did not answer within 300ms") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestNew(t *testing.T) {
	good := twiliovoice.Config{Account: twiliorest.Account{SID: account, AuthToken: token}, From: caller}
	tests := []providertest.Change[twiliovoice.Config]{
		{Name: "good", Change: func(*twiliovoice.Config) {}},
		{Name: "ring a minute", Change: func(c *twiliovoice.Config) { c.Ring = time.Minute }},
		{Name: "http on loopback", Change: func(c *twiliovoice.Config) { c.APIURL = "http://127.0.0.1:8080" }},
		{Name: "everything wrong at once", Change: func(c *twiliovoice.Config) {
			*c = twiliovoice.Config{
				Account: twiliorest.Account{SID: "SK" + strings.Repeat("0", 32), AuthToken: "sec ret\n",
					APIURL: "http://twilio-proxy.example", StatusCallback: "/status", Timeout: -time.Second},
				From: "Tocsin", Ring: 2 * time.Second,
			}
		}, Want: []string{
			`account SID "SK000`, "auth token holds characters other than letters and digits",
			`from "Tocsin": a call needs a number`, "plain http would send the auth token in clear text",
			`status callback "/status"`, "ring 2s: want whole seconds from 5s to 10m0s", "timeout -1s is negative",
		}},
		{Name: "ring in fractions", Change: func(c *twiliovoice.Config) { c.Ring = 7500 * time.Millisecond }, Want: []string{"ring 7.5s"}},
		{Name: "ring too long", Change: func(c *twiliovoice.Config) { c.Ring = time.Hour }, Want: []string{"ring 1h0m0s"}},
		{Name: "empty", Change: func(c *twiliovoice.Config) { *c = twiliovoice.Config{} }, Want: []string{"account SID", "auth token is empty", `from ""`}},
	}
	providertest.Configs(t, twiliovoice.New, good, tests, func(cfg twiliovoice.Config) []string { return []string{cfg.AuthToken} })
}

// TestContract: the caller keeps the promises every adapter keeps.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T, o providertest.Options) providertest.Rig {
		s := twilioapi.Start(t, account, token)
		cfg := config(s)
		cfg.Timeout, cfg.APIURL = o.Timeout, o.APIURL(cfg.APIURL)
		c := newCaller(t, cfg)
		return twiliotest.Rig(s,
			func(ctx context.Context, key string) (string, error) { return c.Call(ctx, rcpt, key, gather) },
			func() []string {
				return providertest.Keys(s.Calls(), func(call twilioapi.Call) string { return call.TwiML })
			},
			21215, secrets)
	})
}

// noSecrets fails if err, or anything it wraps, shows the auth token, the
// number in full or the signed gather URL.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	providertest.NoSecretsInCauses(t, err, secrets...)
}
