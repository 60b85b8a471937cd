package twilioapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

const (
	token = "0123456789abcdef0123456789abcdef"
	to    = "+447700900001"
	from  = "+447700900999"
)

var (
	account = "AC" + strings.Repeat("0a", 16)
	service = "MG" + strings.Repeat("1b", 16)
	smRE    = regexp.MustCompile(`^SM[0-9a-f]{32}$`)
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestCreateWithTwilioGo(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	before := time.Now().Add(-time.Second)

	params := (&api.CreateMessageParams{}).
		SetTo(to).SetFrom(from).SetBody("web-3 is down — since 12:00").
		SetStatusCallback("https://tocsin.example/twilio/status")
	got, err := s.RestClient().Api.CreateMessage(params)
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}

	if got.Sid == nil || !smRE.MatchString(*got.Sid) {
		t.Fatalf("sid = %v, want SM and 32 hex digits", got.Sid)
	}
	sid := *got.Sid
	created, err := time.Parse(time.RFC1123Z, deref(got.DateCreated))
	if err != nil || created.Before(before.Truncate(time.Second)) {
		t.Errorf("date_created = %q (%v), want an RFC 2822 time of now", deref(got.DateCreated), err)
	}
	want := map[string]string{
		"status":       "queued",
		"to":           to,
		"from":         from,
		"body":         "web-3 is down — since 12:00",
		"num_segments": "1", // UCS-2 for the dash, 27 characters
		"num_media":    "0",
		"account_sid":  account,
		"direction":    "outbound-api",
		"api_version":  "2010-04-01",
		"uri":          "/2010-04-01/Accounts/" + account + "/Messages/" + sid + ".json",
	}
	have := map[string]string{
		"status":       deref(got.Status),
		"to":           deref(got.To),
		"from":         deref(got.From),
		"body":         deref(got.Body),
		"num_segments": deref(got.NumSegments),
		"num_media":    deref(got.NumMedia),
		"account_sid":  deref(got.AccountSid),
		"direction":    deref(got.Direction),
		"api_version":  deref(got.ApiVersion),
		"uri":          deref(got.Uri),
	}
	if diff := cmp.Diff(have, want); diff != "" {
		t.Errorf("message resource (-got +want):\n%s", diff)
	}

	msgs, err := s.WaitFor(ctx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.SID != sid || m.To != to || m.From != from || m.Body != "web-3 is down — since 12:00" ||
		m.StatusCallback != "https://tocsin.example/twilio/status" || m.NumSegments != 1 {
		t.Errorf("recorded %+v", m)
	}
	wantRaw := "Body=web-3+is+down+%E2%80%94+since+12%3A00&From=%2B447700900999" +
		"&StatusCallback=https%3A%2F%2Ftocsin.example%2Ftwilio%2Fstatus&To=%2B447700900001"
	if m.Raw != wantRaw {
		t.Errorf("raw body:\n got %s\nwant %s", m.Raw, wantRaw)
	}
	if ua := m.Header.Get("User-Agent"); !strings.HasPrefix(ua, "twilio-go/") {
		t.Errorf("User-Agent = %q, want twilio-go's", ua)
	}
}

func TestMessagingServiceOnly(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	params := (&api.CreateMessageParams{}).SetTo(to).SetMessagingServiceSid(service).SetBody("hello")
	got, err := s.RestClient().Api.CreateMessage(params)
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if deref(got.Status) != "accepted" || got.From != nil || deref(got.MessagingServiceSid) != service {
		t.Errorf("status %q from %v service %q; want accepted, null, %s",
			deref(got.Status), got.From, deref(got.MessagingServiceSid), service)
	}
}

// TestAnswers checks each way the stand-in refuses or accepts a request
// with raw HTTP, byte for byte where Twilio's answer is fixed.
func TestAnswers(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	path := "/2010-04-01/Accounts/" + account + "/Messages.json"
	good := url.Values{"To": {to}, "From": {from}, "Body": {"hello"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}

	tests := []struct {
		name        string
		method      string
		path        string
		user, pass  string
		contentType string
		form        url.Values
		status      int
		code        int    // 0: no error
		body        string // when set, the whole answer
	}{
		{name: "no credentials", user: "-", status: 401,
			body: `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`},
		{name: "wrong token", pass: "0123456789abcdef0123456789abcdee", status: 401, code: 20003},
		{name: "wrong account", user: "AC" + strings.Repeat("0b", 16), status: 401, code: 20003},
		{name: "another account's path", path: "/2010-04-01/Accounts/AC" + strings.Repeat("0b", 16) + "/Messages.json", status: 401, code: 20003},
		{name: "unknown resource", path: "/2010-04-01/Accounts/" + account + "/Queues.json", status: 404, code: 20404},
		{name: "GET", method: "GET", status: 405, code: 20004},
		{name: "JSON is no form", contentType: "application/json", status: 400, code: 21604},
		{name: "no To", form: with("To", ""), status: 400,
			body: `{"code":21604,"message":"A 'To' phone number is required.","more_info":"https://www.twilio.com/docs/errors/21604","status":400}`},
		{name: "To not E.164", form: with("To", "07700900001"), status: 400,
			body: `{"code":21211,"message":"The 'To' number 07700900001 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`},
		{name: "To with spaces", form: with("To", "+44 7700 900001"), status: 400, code: 21211},
		{name: "no From", form: with("From", ""), status: 400, code: 21603},
		{name: "bad From", form: with("From", "+0"), status: 400, code: 21212},
		{name: "alphanumeric From", form: with("From", "Tocsin"), status: 201},
		{name: "short code From", form: with("From", "12345"), status: 201},
		{name: "alphanumeric From too long", form: with("From", "TocsinAlarms"), status: 400, code: 21212},
		{name: "bad service", form: with("MessagingServiceSid", "MGnope"), status: 400, code: 21701},
		{name: "no Body", form: with("Body", ""), status: 400,
			body: `{"code":21602,"message":"Message body is required.","more_info":"https://www.twilio.com/docs/errors/21602","status":400}`},
		{name: "Body of 1600", form: with("Body", strings.Repeat("a", 1600)), status: 201},
		{name: "Body of 1601", form: with("Body", strings.Repeat("a", 1601)), status: 400, code: 21617},
		{name: "800 emoji", form: with("Body", strings.Repeat("🔥", 800)), status: 201},
		{name: "801 emoji count as 1602", form: with("Body", strings.Repeat("🔥", 801)), status: 400, code: 21617},
		{name: "relative StatusCallback", form: with("StatusCallback", "/twilio/status"), status: 400, code: 21609},
		{name: "ftp StatusCallback", form: with("StatusCallback", "ftp://tocsin.example/s"), status: 400, code: 21609},
		{name: "empty StatusCallback is none", form: with("StatusCallback", "-"), status: 201},
		{name: "http StatusCallback", form: with("StatusCallback", "http://127.0.0.1:9/s?x=1"), status: 201},
		{name: "good", status: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, p, user, pass, ct, form := "POST", path, account, token, "application/x-www-form-urlencoded", good
			if tt.method != "" {
				method = tt.method
			}
			if tt.path != "" {
				p = tt.path
			}
			if tt.user != "" {
				user = tt.user
			}
			if tt.pass != "" {
				pass = tt.pass
			}
			if tt.contentType != "" {
				ct = tt.contentType
			}
			if tt.form != nil {
				form = tt.form
			}
			if v := form.Get("StatusCallback"); v == "-" {
				form.Set("StatusCallback", "")
			}
			req, err := http.NewRequestWithContext(ctx(t), method, s.URL+p, strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			if user != "-" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)

			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.status, b)
			}
			if tt.body != "" && string(b) != tt.body {
				t.Errorf("body:\n got %s\nwant %s", b, tt.body)
			}
			if tt.code != 0 && !strings.Contains(string(b), `"code":`+itoa(tt.code)+`,`) {
				t.Errorf("body %s, want code %d", b, tt.code)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestSegments(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	tests := []struct {
		name string
		body string
		want int
	}{
		{"GSM single", strings.Repeat("a", 160), 1},
		{"GSM two", strings.Repeat("a", 161), 2},
		{"GSM two full", strings.Repeat("a", 306), 2},
		{"GSM three", strings.Repeat("a", 307), 3},
		{"extension counts two", strings.Repeat("€", 80), 1},
		{"extension over", strings.Repeat("€", 81), 2},
		{"escape not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), 3},
		{"UCS-2 single", strings.Repeat("ą", 70), 1},
		{"UCS-2 two", strings.Repeat("ą", 71), 2},
		{"UCS-2 two full", strings.Repeat("ą", 134), 2},
		{"UCS-2 three", strings.Repeat("ą", 135), 3},
		{"emoji is two units", strings.Repeat("🔥", 35), 1},
		{"surrogates not split", strings.Repeat("ą", 66) + "🔥" + strings.Repeat("ą", 66), 3},
		{"one non-GSM makes all UCS-2", strings.Repeat("a", 70) + "’", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RestClient().Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetFrom(from).SetBody(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if deref(got.NumSegments) != itoa(tt.want) {
				t.Errorf("num_segments = %s, want %d", deref(got.NumSegments), tt.want)
			}
		})
	}
}

func send(s *twilioapi.Server, body string) (*api.ApiV2010Message, error) {
	return s.RestClient().Api.CreateMessage((&api.CreateMessageParams{}).SetTo(to).SetFrom(from).SetBody(body))
}

func restError(t *testing.T, err error) *client.TwilioRestError {
	t.Helper()
	var re *client.TwilioRestError
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want *client.TwilioRestError", err, err)
	}
	return re
}

func TestFailNextQueues(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	s.FailNext(2, twilioapi.ServerError(503))
	s.FailNext(1, twilioapi.ServerError(500))
	s.FailNext(1, twilioapi.RateLimited(1500*time.Millisecond))
	s.FailNext(1, twilioapi.Refused(21610))
	s.FailNext(1, twilioapi.Fault{Status: 400, Code: 21408})

	want := []struct{ status, code int }{{503, 20503}, {503, 20503}, {500, 20500}, {429, 20429}, {400, 21610}, {400, 21408}}
	for i, w := range want {
		_, err := send(s, "hello")
		re := restError(t, err)
		if re.Status != w.status || re.Code != w.code {
			t.Errorf("request %d: %d/%d, want %d/%d", i+1, re.Status, re.Code, w.status, w.code)
		}
		if re.MoreInfo != "https://www.twilio.com/docs/errors/"+itoa(w.code) {
			t.Errorf("request %d: more_info %q", i+1, re.MoreInfo)
		}
	}
	if _, err := send(s, "hello"); err != nil {
		t.Fatalf("after the queue: %v", err)
	}

	var got []int
	for _, a := range s.Attempts() {
		got = append(got, a.Status)
	}
	if diff := cmp.Diff(got, []int{503, 503, 500, 429, 400, 400, 201}); diff != "" {
		t.Errorf("attempts (-got +want):\n%s", diff)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestRetryAfterHeaderAndHTML(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	s.FailNext(1, twilioapi.RateLimited(1500*time.Millisecond))
	s.FailNext(1, twilioapi.Fault{Status: 502, HTML: "<html><body>Bad Gateway</body></html>"})
	s.FailNext(1, twilioapi.Fault{Status: 400, Code: 21211, Message: "custom words"})

	resp := post(t, s.Client(), "https://api.twilio.com/2010-04-01/Accounts/"+account+"/Messages.json")
	if resp.status != 429 || resp.header.Get("Retry-After") != "2" {
		t.Errorf("got %d Retry-After %q, want 429 and 2 (1.5s rounded up)", resp.status, resp.header.Get("Retry-After"))
	}
	resp = post(t, s.Client(), "https://api.twilio.com/2010-04-01/Accounts/"+account+"/Messages.json")
	if resp.status != 502 || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/html") || !strings.Contains(resp.body, "Bad Gateway") {
		t.Errorf("got %d %q %q, want a 502 HTML page", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	resp = post(t, s.Client(), "https://api.twilio.com/2010-04-01/Accounts/"+account+"/Messages.json")
	if want := `{"code":21211,"message":"custom words","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`; resp.body != want {
		t.Errorf("body %s, want %s", resp.body, want)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func post(t *testing.T, c *http.Client, u string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), "POST", u, strings.NewReader(url.Values{"To": {to}, "From": {from}, "Body": {"x"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(account, token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func TestFailIfByRecipient(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	var seen []int
	s.FailIf(func(r twilioapi.Request) *twilioapi.Fault {
		seen = append(seen, r.N)
		if r.To == "+447700900666" {
			f := twilioapi.Refused(21610)
			return &f
		}
		return nil
	})
	c := s.RestClient()
	for _, number := range []string{to, "+447700900666", "+447700900002"} {
		_, err := c.Api.CreateMessage((&api.CreateMessageParams{}).SetTo(number).SetFrom(from).SetBody("x"))
		if number == "+447700900666" {
			if re := restError(t, err); re.Code != 21610 {
				t.Errorf("code %d, want 21610", re.Code)
			}
		} else if err != nil {
			t.Errorf("to %s: %v", number, err)
		}
	}
	if diff := cmp.Diff(seen, []int{1, 2, 3}); diff != "" {
		t.Errorf("Request.N (-got +want):\n%s", diff)
	}
	s.FailIf(nil)
	if _, err := c.Api.CreateMessage((&api.CreateMessageParams{}).SetTo("+447700900666").SetFrom(from).SetBody("x")); err != nil {
		t.Errorf("after FailIf(nil): %v", err)
	}
}

// TestSignatureGolden checks Signature against the example twilio-go's own
// tests hold, which includes a name that is a prefix of another.
func TestSignatureGolden(t *testing.T) {
	params := url.Values{
		"Digits":                {"1234"},
		"CallSid":               {"CA1234567890ABCDE"},
		"To":                    {"+18005551212"},
		"Caller":                {"+14158675309"},
		"From":                  {"+14158675309"},
		"ReasonConferenceEnded": {"test"},
		"Reason":                {"Participant"},
	}
	got := twilioapi.Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if want := "vOEb5UThFn24KEfnOFLQY2AE5FY="; got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}

// hook records the requests a webhook receives and checks their signature
// as a Tocsin handler would, with twilio-go's RequestValidator.
type hook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	forms []url.Values
	valid []bool
	reply string
}

func startHook(t *testing.T, reply string) *hook {
	h := &hook{reply: reply}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		params := map[string]string{}
		for k := range form {
			params[k] = form.Get(k)
		}
		v := client.NewRequestValidator(token)
		public := "http://" + r.Host + r.URL.RequestURI() // the URL Twilio was given
		ok := v.Validate(public, params, r.Header.Get("X-Twilio-Signature")) &&
			v.ValidateBody(public, body, r.Header.Get("X-Twilio-Signature")) &&
			r.Header.Get("Content-Type") == "application/x-www-form-urlencoded"
		h.mu.Lock()
		h.forms = append(h.forms, form)
		h.valid = append(h.valid, ok)
		h.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		_, _ = io.WriteString(w, h.reply)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func TestReportStatus(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	h := startHook(t, "")
	callback := h.srv.URL + "/twilio/status?incident=42&n=3"
	got, err := s.RestClient().Api.CreateMessage((&api.CreateMessageParams{}).
		SetTo(to).SetFrom(from).SetBody("x").SetStatusCallback(callback))
	if err != nil {
		t.Fatal(err)
	}
	sid := *got.Sid

	for _, st := range []twilioapi.Status{twilioapi.Sent, twilioapi.Delivered, twilioapi.Undelivered} {
		a, err := s.ReportStatus(ctx(t), sid, st, 30003)
		if err != nil || a.Status != 200 {
			t.Fatalf("ReportStatus(%s) = %d, %v", st, a.Status, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, ok := range h.valid {
		if !ok {
			t.Errorf("callback %d: signature not valid for twilio-go's RequestValidator", i)
		}
	}
	want := url.Values{
		"AccountSid": {account}, "ApiVersion": {"2010-04-01"}, "From": {from}, "To": {to},
		"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {"sent"}, "SmsStatus": {"sent"},
	}
	if diff := cmp.Diff(h.forms[0], want); diff != "" {
		t.Errorf("sent callback (-got +want):\n%s", diff)
	}
	if h.forms[1].Get("MessageStatus") != "delivered" || h.forms[1].Has("ErrorCode") {
		t.Errorf("delivered callback %v: want no ErrorCode", h.forms[1])
	}
	if h.forms[2].Get("MessageStatus") != "undelivered" || h.forms[2].Get("ErrorCode") != "30003" {
		t.Errorf("undelivered callback %v: want ErrorCode 30003", h.forms[2])
	}
}

func TestReportStatusErrors(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	if _, err := s.ReportStatus(ctx(t), "SMnope", twilioapi.Sent, 0); err == nil {
		t.Error("ReportStatus for an unknown message succeeded")
	}
	got, err := send(s, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportStatus(ctx(t), *got.Sid, twilioapi.Sent, 0); err == nil {
		t.Error("ReportStatus for a message without StatusCallback succeeded")
	}
	// A callback anywhere but loopback is never posted.
	got, err = s.RestClient().Api.CreateMessage((&api.CreateMessageParams{}).
		SetTo(to).SetFrom(from).SetBody("x").SetStatusCallback("https://tocsin.example/status"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportStatus(ctx(t), *got.Sid, twilioapi.Sent, 0); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("ReportStatus to a public host: %v, want a refusal", err)
	}
}

func TestSendInbound(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	twiml := `<?xml version="1.0" encoding="UTF-8"?><Response><Message>Acknowledged</Message></Response>`
	h := startHook(t, twiml)
	sid := twilioapi.NewSID("SM")

	a, err := s.SendInbound(ctx(t), h.srv.URL+"/twilio/sms", twilioapi.Inbound{From: to, To: from, Body: "ACK 42", MessageSID: sid})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != 200 || a.Body != twiml || a.Header.Get("Content-Type") != "text/xml" {
		t.Errorf("answer %d %q %q", a.Status, a.Header.Get("Content-Type"), a.Body)
	}
	if _, err := s.SendInbound(ctx(t), h.srv.URL+"/twilio/sms", twilioapi.Inbound{From: to, To: from, Body: "STOP"}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.valid[0] || !h.valid[1] {
		t.Error("inbound signature not valid for twilio-go's RequestValidator")
	}
	f := h.forms[0]
	for k, v := range map[string]string{"From": to, "To": from, "Body": "ACK 42", "MessageSid": sid, "AccountSid": account, "SmsStatus": "received", "NumSegments": "1"} {
		if f.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, f.Get(k), v)
		}
	}
	if other := h.forms[1].Get("MessageSid"); !smRE.MatchString(other) || other == sid {
		t.Errorf("generated MessageSid %q", other)
	}
}

func TestTransportRegionalHost(t *testing.T) {
	s := twilioapi.Start(t, account, token)
	// A regional host, as twilio-go builds from TWILIO_REGION, reaches
	// the stand-in too.
	if a := post(t, s.Client(), "https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/"+account+"/Messages.json"); a.status != 201 {
		t.Errorf("regional host: %d %s", a.status, a.body)
	}
}

func TestNewRejectsCredentials(t *testing.T) {
	for _, c := range [][2]string{{"", token}, {account, ""}, {account, "tok-en"}, {"AC 1", token}} {
		if s, err := twilioapi.New(c[0], c[1]); err == nil {
			s.Close()
			t.Errorf("New(%q, %q) succeeded", c[0], c[1])
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStandInContract: the stand-in's faults, stalls and transport work
// as every stand-in's do.
func TestStandInContract(t *testing.T) {
	runContract(t, "Messages.json", func(key string) url.Values { return url.Values{"To": {to}, "From": {from}, "Body": {key}} },
		func(s *twilioapi.Server) []string {
			return providertest.Keys(s.Messages(), func(m twilioapi.Message) string { return m.Body })
		},
		func(ctx context.Context, s *twilioapi.Server, n int) (int, error) {
			msgs, err := s.WaitFor(ctx, n)
			return len(msgs), err
		})
}

// runContract runs the stand-in contract against one resource of the
// account: form is the request carrying a key, accepted the keys the
// stand-in took, in order.
func runContract(t *testing.T, resource string, form func(key string) url.Values, accepted func(*twilioapi.Server) []string,
	waitFor func(ctx context.Context, s *twilioapi.Server, n int) (int, error)) {
	providertest.RunStandIn(t, func(t *testing.T) providertest.StandIn {
		s := twilioapi.Start(t, account, token)
		hc := s.Client()
		return providertest.StandIn{
			Post: func(ctx context.Context, key string) (int, error) {
				return providertest.Post(ctx, hc, "https://api.twilio.com/2010-04-01/Accounts/"+account+"/"+resource,
					"application/x-www-form-urlencoded", form(key).Encode(), func(r *http.Request) { r.SetBasicAuth(account, token) })
			},
			OK:          http.StatusCreated,
			Unavailable: func() { s.Fail(twilioapi.ServerError(503)) },
			Stall:       func() { s.Fail(twilioapi.Stall()) },
			StallNext:   func() { s.FailNext(1, twilioapi.Stall()) },
			Recover:     s.Recover, Release: s.Release,
			Stalled: s.Stalled, Connections: s.Connections,
			Attempts: func() int { return len(s.Attempts()) },
			Accepted: func() []string { return accepted(s) },
			WaitFor:  func(ctx context.Context, n int) (int, error) { return waitFor(ctx, s, n) },
			Close:    s.Close, Client: hc, API: "api.twilio.com",
		}
	})
}
