package twilioapi_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
)

var caRE = regexp.MustCompile(`^CA[0-9a-f]{32}$`)

func call(s *twilioapi.Server, p *api.CreateCallParams) (*api.ApiV2010Call, error) {
	return s.RestClient().Api.CreateCall(p)
}

func twimlGathering(action string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Response><Gather numDigits="1" action="` + action +
		`" method="POST"><Say>web-3 is down</Say></Gather></Response>`
}

func TestCreateCallWithTwilioGo(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	tw := twimlGathering("https://tocsin.example/twilio/voice/x")
	c, err := call(s, (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml(tw).SetTimeout(25))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sid == nil || !caRE.MatchString(*c.Sid) || *c.Status != "queued" || *c.To != to || *c.From != from || *c.Direction != "outbound-api" {
		t.Errorf("answer %+v", c)
	}
	calls, err := s.WaitForCalls(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := calls[0]
	if got.SID != *c.Sid || got.To != to || got.From != from || got.TwiML != tw || got.Timeout != "25" {
		t.Errorf("stored %+v", got)
	}
	if len(s.Messages()) != 0 {
		t.Errorf("a call stored as a message: %+v", s.Messages())
	}
}

func TestCallRefused(t *testing.T) {
	good := func() *api.CreateCallParams {
		return (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml("<Response><Say>x</Say></Response>")
	}
	tests := []struct {
		name   string
		params *api.CreateCallParams
		code   int
		text   string
	}{
		{"no To", (&api.CreateCallParams{}).SetFrom(from).SetTwiml("<Response/>"), 21201, "No 'To' number is specified"},
		{"national To", good().SetTo("07700900001"), 21211, "The 'To' number 07700900001 is not a valid phone number."},
		{"no From", (&api.CreateCallParams{}).SetTo(to).SetTwiml("<Response/>"), 21213, "No 'From' number"},
		{"name as From", good().SetFrom("Tocsin"), 21212, "'From' number Tocsin"},
		{"neither Twiml nor Url", (&api.CreateCallParams{}).SetTo(to).SetFrom(from), 21205, "Either Url, Twiml or ApplicationSid is required"},
		{"relative Url", (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetUrl("/voice"), 21205, "not a valid URL"},
		{"Twiml over 4000", good().SetTwiml("<Response><Say>" + strings.Repeat("ü", 3980) + "</Say></Response>"), 21658, "4000 character limit"},
		{"bad status callback", good().SetStatusCallback("status"), 21609, "StatusCallback"},
	}
	s := twilioapi.Start(t, account, token)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := call(s, tt.params)
			e := restError(t, err)
			if e.Status != 400 || e.Code != tt.code || !strings.Contains(e.Message, tt.text) {
				t.Errorf("got %d %d %q, want 400 %d containing %q", e.Status, e.Code, e.Message, tt.code, tt.text)
			}
		})
	}
	// Exactly 4000 characters is taken.
	body := "<Response><Say>" + strings.Repeat("ü", 4000-len("<Response><Say></Say></Response>")) + "</Say></Response>"
	if _, err := call(s, good().SetTwiml(body)); err != nil {
		t.Errorf("4000 characters: %v", err)
	}
	if n := len(s.Calls()); n != 1 {
		t.Errorf("%d calls stored, want only the good one", n)
	}
}

func TestCallAuthentication(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	form := url.Values{"To": {to}, "From": {from}, "Twiml": {"<Response/>"}}
	post := func(path, user, pass string) int {
		req, _ := http.NewRequestWithContext(ctx(t), "POST", "https://api.twilio.com"+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(user, pass)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	path := "/2010-04-01/Accounts/" + account + "/Calls.json"
	if got := post(path, account, "wrong0token"); got != 401 {
		t.Errorf("bad token: %d, want 401", got)
	}
	other := "AC" + strings.Repeat("00", 16)
	if got := post("/2010-04-01/Accounts/"+other+"/Calls.json", account, token); got != 401 {
		t.Errorf("another account's calls: %d, want 401", got)
	}
	if got := post("/2010-04-01/Accounts/"+account+"/Calls.xml", account, token); got != 404 {
		t.Errorf("unknown resource: %d, want 404", got)
	}
	if got := post(path, account, token); got != 201 {
		t.Errorf("good request: %d, want 201", got)
	}
}

func TestCallFaults(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	p := func() *api.CreateCallParams {
		return (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml("<Response/>")
	}
	s.FailNext(1, twilioapi.ServerError(503))
	if e := restError(t, second(call(s, p()))); e.Status != 503 || e.Code != 20503 {
		t.Errorf("got %d %d, want 503", e.Status, e.Code)
	}
	if _, err := call(s, p()); err != nil {
		t.Fatalf("after the fault: %v", err)
	}

	s.FailNext(1, twilioapi.Stall())
	done := make(chan error, 1)
	go func() { _, err := call(s, p()); done <- err }()
	wait.For(t, "the call held", func() bool { return s.Stalled() == 1 })
	s.Release()
	if err := <-done; err != nil {
		t.Errorf("released call: %v", err)
	}
	if n := len(s.Calls()); n != 2 {
		t.Errorf("%d calls stored, want 2", n)
	}
}

func second[T any](_ T, err error) error { return err }

func TestPress(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	h := startHook(t, `<Response><Say>Acknowledged</Say></Response>`)
	action := h.srv.URL + "/twilio/voice/inc/who/sig?a=1&b=2"
	// The action as it appears in TwiML: its & escaped.
	tw := twimlGathering(strings.ReplaceAll(action, "&", "&amp;"))
	c, err := call(s, (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml(tw))
	if err != nil {
		t.Fatal(err)
	}
	ans, err := s.PressAnswer(ctx(t), *c.Sid, "1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Status != 200 || !strings.Contains(ans.Body, "Acknowledged") {
		t.Errorf("answer %d %q", ans.Status, ans.Body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.forms) != 1 || !h.valid[0] {
		t.Fatalf("hook got %d requests, valid %v", len(h.forms), h.valid)
	}
	f := h.forms[0]
	want := map[string]string{"CallSid": *c.Sid, "AccountSid": account, "From": from, "To": to, "Digits": "1", "CallStatus": "in-progress"}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, f.Get(k), v)
		}
	}
	// The signature is over the URL as it was given, query included.
	v := client.NewRequestValidator(token)
	if sig := twilioapi.Signature(token, action, f); !v.Validate(action, flat(f), sig) {
		t.Error("the signature does not validate")
	}
}

func TestPressErrors(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	if _, err := s.Press(ctx(t), "CA"+strings.Repeat("0", 32), "1"); err == nil || !strings.Contains(err.Error(), "no call") {
		t.Errorf("unknown call: %v", err)
	}
	tests := []struct{ name, twiml, want string }{
		{"no gather", "<Response><Say>x</Say></Response>", "no <Gather>"},
		{"relative action", twimlGathering("/voice"), "no absolute action URL"},
		{"GET", `<Response><Gather action="http://127.0.0.1:1/x" method="GET"/></Response>`, "posts only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := call(s, (&api.CreateCallParams{}).SetTo(to).SetFrom(from).SetTwiml(tt.twiml))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Press(ctx(t), *c.Sid, "1"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func flat(v url.Values) map[string]string {
	m := map[string]string{}
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

// TestCallsStandInContract: calls fail, stall and recover on command as
// messages do.
func TestCallsStandInContract(t *testing.T) {
	runContract(t, "Calls.json",
		func(key string) url.Values {
			return url.Values{"To": {to}, "From": {from}, "Twiml": {"<Response><Say>" + key + "</Say></Response>"}}
		},
		func(s *twilioapi.Server) []string {
			return providertest.Keys(s.Calls(), func(c twilioapi.Call) string { return c.TwiML })
		},
		func(ctx context.Context, s *twilioapi.Server, n int) (int, error) {
			calls, err := s.WaitForCalls(ctx, n)
			return len(calls), err
		})
}
