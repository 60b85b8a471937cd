package twiliosms_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest/twiliotest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliosms"
)

const (
	token  = "f00dfeedf00dfeedf00dfeedf00dfeed"
	sender = "+447700900999"
	rcpt   = "+447700900001"
	masked = "+44…001"
)

var (
	account = "AC" + strings.Repeat("5e", 16)
	service = "MG" + strings.Repeat("7c", 16)
	// secrets are what no error may show: the auth token, the number in
	// full.
	secrets = []string{token, rcpt, strings.TrimPrefix(rcpt, "+")}
)

func config(s *twilioapi.Server) twiliosms.Config {
	return twiliosms.Config{
		Account: twiliorest.Account{SID: account, AuthToken: token, APIURL: s.URL, Timeout: 5 * time.Second},
		From:    sender,
	}
}

func newSender(t *testing.T, cfg twiliosms.Config) *twiliosms.Sender {
	return providertest.New(t, twiliosms.New, cfg)
}

func ctx(t *testing.T) context.Context { return providertest.Context(t) }

// TestRequestOnTheWire holds, byte for byte, what Send puts on the wire
// for each shape of request.
func TestRequestOnTheWire(t *testing.T) {
	tests := []struct {
		name     string
		from     string
		callback string
		body     string
		want     string
	}{
		{
			name: "number",
			from: sender,
			body: "web-3 is down",
			want: "Body=web-3+is+down&From=%2B447700900999&To=%2B447700900001",
		},
		{
			name:     "status callback",
			from:     sender,
			callback: "https://tocsin.example/twilio/status?site=fra",
			body:     "web-3 is down",
			want: "Body=web-3+is+down&From=%2B447700900999" +
				"&StatusCallback=https%3A%2F%2Ftocsin.example%2Ftwilio%2Fstatus%3Fsite%3Dfra&To=%2B447700900001",
		},
		{
			name: "messaging service",
			from: service,
			body: "web-3 is down",
			want: "Body=web-3+is+down&MessagingServiceSid=" + service + "&To=%2B447700900001",
		},
		{
			name: "alphanumeric sender",
			from: "Tocsin",
			body: "ok",
			want: "Body=ok&From=Tocsin&To=%2B447700900001",
		},
		{
			name: "characters that need escaping",
			from: sender,
			body: "a&b=c+d 100% ü € 🔥\nnext line",
			want: "Body=a%26b%3Dc%2Bd+100%25+%C3%BC+%E2%82%AC+%F0%9F%94%A5%0Anext+line&From=%2B447700900999&To=%2B447700900001",
		},
	}
	s := twilioapi.Start(t, account, token)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(s)
			cfg.From, cfg.StatusCallback = tt.from, tt.callback
			sid, err := newSender(t, cfg).Send(ctx(t), rcpt, tt.body)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := providertest.Find(t, s.Messages(), func(m twilioapi.Message) string { return m.SID }, sid)
			if got.Raw != tt.want {
				t.Errorf("body on the wire:\n got %s\nwant %s", got.Raw, tt.want)
			}
			wantHeader := map[string]string{
				"Content-Type":  "application/x-www-form-urlencoded",
				"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(account+":"+token)),
			}
			for k, v := range wantHeader {
				if g := got.Header.Get(k); g != v {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			if ua := got.Header.Get("User-Agent"); !strings.HasPrefix(ua, "twilio-go/") || !strings.HasSuffix(ua, " tocsin") {
				t.Errorf("User-Agent = %q, want twilio-go's and tocsin", ua)
			}
		})
	}
}

func TestSendReturnsTheSID(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	sid, err := newSender(t, config(s)).Send(ctx(t), rcpt, "web-3 is down")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := s.WaitFor(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if msgs[0].SID != sid || msgs[0].To != rcpt || msgs[0].From != sender || msgs[0].Body != "web-3 is down" {
		t.Errorf("sent %s, stand-in has %+v", sid, msgs[0])
	}
}

// TestFailures sends through each way Twilio fails and checks how Send
// classifies it.
func TestFailures(t *testing.T) {
	twiliotest.Failures(t, twiliotest.Adapter{
		Account: account, Token: token, Prefix: "twilio: send sms to " + masked + ": ",
		Secrets: secrets,
		Send: func(t *testing.T, s *twilioapi.Server) error {
			_, err := newSender(t, config(s)).Send(ctx(t), rcpt, "web-3 is down")
			return err
		},
	}, append(twiliotest.Common(), []twiliotest.Failure{
		{Name: "unsubscribed recipient", Fault: twilioapi.Refused(21610), Status: 400, Code: 21610,
			Text: "Attempt to send to unsubscribed recipient"},
		{Name: "region not enabled", Fault: twilioapi.Refused(21408), Status: 400, Code: 21408,
			Text: "the region indicated by the 'To' number: " + masked + "."},
		{Name: "number refused, quoted", Fault: twilioapi.Refused(21211), Status: 400, Code: 21211,
			Text: "The 'To' number " + masked + " is not a valid phone number."},
		{Name: "number refused without the plus", Status: 400, Code: 21614,
			Fault: twilioapi.Fault{Status: 400, Code: 21614, Message: "'To' number 447700900001 is not a valid mobile number"},
			Text:  "'To' number " + masked + " is not a valid mobile number"},
	}...))
}

// TestChunkedAnswersReused is TestConnectionsReused for answers without a
// Content-Length whose end arrives after the JSON: a client recycles the
// connection only once it has read the answer to its end, and twilio-go
// stops reading at the end of the JSON.
func TestChunkedAnswersReused(t *testing.T) {
	var mu sync.Mutex
	conns, n := 0, 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		ok := n%2 == 0
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if ok {
			w.WriteHeader(201)
			w.(http.Flusher).Flush() // no Content-Length: chunked
			fmt.Fprintf(w, `{"sid":"SM%032d","status":"queued"}`+"\n", n)
		} else {
			w.WriteHeader(503)
			w.(http.Flusher).Flush()
			fmt.Fprint(w, `{"code":20503,"message":"Service is unavailable. Please try again","more_info":"https://www.twilio.com/docs/errors/20503","status":503}`+"\n")
		}
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond) // the end of the body comes later
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	snd := newSender(t, twiliosms.Config{Account: twiliorest.Account{SID: account, AuthToken: token, APIURL: srv.URL}, From: sender})
	for i := range 6 {
		_, err := snd.Send(ctx(t), rcpt, "x")
		if (i%2 == 1) != (err == nil) {
			t.Fatalf("send %d: %v", i+1, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("6 sequential sends opened %d connections, want 1", conns)
	}
}

func TestWrongCredentialsArePermanent(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	cfg := config(s)
	cfg.AuthToken = "badbadbadbadbadbadbadbadbadbad00"
	_, err := newSender(t, cfg).Send(ctx(t), rcpt, "x")
	e := providertest.ProviderError(t, err)
	if e.Status != 401 || twiliotest.Code(err) != 20003 || e.Retry || !bus.IsPermanent(err) {
		t.Errorf("got %v (status %d, code %d, retry %v), want a permanent 401", err, e.Status, twiliotest.Code(err), e.Retry)
	}
	if strings.Contains(err.Error(), cfg.AuthToken) {
		t.Errorf("error %q holds the wrong token", err)
	}
	noSecrets(t, err)
}

func TestOtherAccountIsPermanent(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	cfg := config(s)
	cfg.SID = "AC" + strings.Repeat("00", 16)
	_, err := newSender(t, cfg).Send(ctx(t), rcpt, "x")
	if e := providertest.ProviderError(t, err); e.Status != 401 || e.Retry {
		t.Errorf("got %v, want a permanent 401", err)
	}
}

func TestRefusedBeforeSending(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	snd := newSender(t, config(s))
	tests := []struct{ name, to, body, text string }{
		{"national number", "07700900001", "x", "not in international form"},
		{"spaces", "+44 7700 900001", "x", "not in international form"},
		{"empty body", rcpt, "", "the message is empty"},
		{"body over 1600", rcpt, strings.Repeat("🔥", 801), "1602 characters; Twilio takes at most 1600"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := snd.Send(ctx(t), tt.to, tt.body)
			providertest.RefusedBeforeSending(t, err, tt.text)
			if strings.Contains(err.Error(), "7700900001") || strings.Contains(err.Error(), "7700 900001") {
				t.Errorf("error %q holds the number", err)
			}
		})
	}
	if n := len(s.Attempts()); n != 0 {
		t.Errorf("%d requests reached Twilio, want none", n)
	}
}

// TestAPIURLBehindPath sends through a proxy that serves Twilio's API
// below a path, as an operator's egress proxy might.
func TestAPIURLBehindPath(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	proxy := providertest.BehindPath(t, s.URL, "/twilio")
	cfg := config(s)
	cfg.APIURL = proxy + "/twilio/"
	if _, err := newSender(t, cfg).Send(ctx(t), rcpt, "x"); err != nil {
		t.Fatalf("Send via proxy: %v", err)
	}
	cfg.APIURL = proxy // without the path: Twilio's path alone is not found
	_, err := newSender(t, cfg).Send(ctx(t), rcpt, "x")
	if e := providertest.ProviderError(t, err); e.Status != 404 || e.Retry {
		t.Errorf("got %v, want a permanent 404", err)
	}
}

func TestNew(t *testing.T) {
	good := twiliosms.Config{Account: twiliorest.Account{SID: account, AuthToken: token}, From: sender}
	tests := []providertest.Change[twiliosms.Config]{
		{Name: "good", Change: func(*twiliosms.Config) {}},
		{Name: "messaging service", Change: func(c *twiliosms.Config) { c.From = service }},
		{Name: "short code", Change: func(c *twiliosms.Config) { c.From = "12345" }},
		{Name: "alphanumeric sender", Change: func(c *twiliosms.Config) { c.From = "Tocsin" }},
		{Name: "https API URL", Change: func(c *twiliosms.Config) { c.APIURL = "https://twilio-proxy.internal.example/api" }},
		{Name: "http on loopback", Change: func(c *twiliosms.Config) { c.APIURL = "http://127.0.0.1:8080" }},
		{Name: "http on localhost", Change: func(c *twiliosms.Config) { c.APIURL = "http://localhost:8080" }},
		{Name: "everything wrong at once", Change: func(c *twiliosms.Config) {
			*c = twiliosms.Config{
				Account: twiliorest.Account{
					SID:            "SK" + strings.Repeat("0", 32),
					AuthToken:      "sec ret\n",
					APIURL:         "http://twilio-proxy.example",
					StatusCallback: "/twilio/status",
					Timeout:        -time.Second,
				},
				From: "07700900999",
			}
		}, Want: []string{
			`account SID "SK000`, "auth token holds characters other than letters and digits",
			`from "07700900999"`, "plain http would send the auth token in clear text",
			`status callback "/twilio/status"`, "timeout -1s is negative",
		}},
		{Name: "empty", Change: func(c *twiliosms.Config) { *c = twiliosms.Config{} }, Want: []string{"account SID", "auth token is empty", `from ""`}},
		{Name: "API URL with a query", Change: func(c *twiliosms.Config) { c.APIURL = "https://x.example/?a=1" }, Want: []string{"want no user, query or fragment"}},
		{Name: "API URL not a URL", Change: func(c *twiliosms.Config) { c.APIURL = "api.twilio.com" }, Want: []string{"want an absolute http or https URL"}},
		{Name: "alphanumeric sender too long", Change: func(c *twiliosms.Config) { c.From = "TocsinAlarms" }, Want: []string{"from"}},
	}
	providertest.Configs(t, twiliosms.New, good, tests, func(cfg twiliosms.Config) []string { return []string{cfg.AuthToken} })
}

// noSecrets fails if err, or anything it wraps (Twilio's own error among
// them, cleaned), shows the auth token or the number in full.
func noSecrets(t *testing.T, err error) {
	t.Helper()
	providertest.NoSecretsInCauses(t, err, secrets...)
}

// TestContract: the sender keeps the promises every adapter keeps.
func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T, o providertest.Options) providertest.Rig {
		s := twilioapi.Start(t, account, token)
		cfg := config(s)
		cfg.Timeout, cfg.APIURL = o.Timeout, o.APIURL(cfg.APIURL)
		snd := newSender(t, cfg)
		return twiliotest.Rig(s,
			func(ctx context.Context, key string) (string, error) { return snd.Send(ctx, rcpt, key) },
			func() []string {
				return providertest.Keys(s.Messages(), func(m twilioapi.Message) string { return m.Body })
			},
			21610, secrets)
	})
}
