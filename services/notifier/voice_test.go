package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// voiceRig is a notifier with the voice channel, not running: its
// keypress handler alone is served on loopback, at notify.public_url, and
// its calls go to the Twilio stand-in.
type voiceRig struct {
	n      *Notifier
	b      *bus.Bus
	voice  Channel
	twilio *twilioapi.Server
	public string
	logs   *logbuf.Buffer
}

func startVoice(t *testing.T) *voiceRig {
	t.Helper()
	tw := twilioapi.Start(t, testSID, testToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	y := fmt.Sprintf(`
site: {name: Example Hosting}
locations: [lon1]
boxes: [{id: mx, name: Incoming mail, servers: [{id: mx1, check: "tcp://mx1.internal:25"}]}]
staff:
  - {name: Alice, email: alice@example.net, phone: "%s"}
  - {name: Bob, email: bob@example.net, phone: "%s"}
  - {name: Carol, email: carol@example.net}
providers:
  smtp: {host: 127.0.0.1, port: 2525, from: alerts@example.net, tls: none}
  twilio: {from: "+447700900000", account_sid_env: SID, auth_token_env: TOKEN, api_url: "%s"}
notify: {public_url: "%s", link_key_env: LINK}
`, alicePh, bobPh, tw.URL, public)
	env := map[string]string{"SID": testSID, "TOKEN": testToken, "LINK": "l1nk-k3y"}
	cfg, err := config.Parse("test.yaml", []byte(y), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	b := bustest.New(t)
	n, err := New(cfg, Deps{Bus: b, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	voice, err := newVoice(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathTwilioVoice+"{incident}/{who}/{sig}", func(w http.ResponseWriter, r *http.Request) { n.voiceGather(w, r, kv) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		for _, secret := range []string{alicePh, bobPh, testToken, "l1nk-k3y"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("the log shows %q", secret)
			}
		}
	})
	return &voiceRig{n: n, b: b, voice: voice, twilio: tw, public: public, logs: logs}
}

func (r *voiceRig) staff(name string) config.Staff {
	for _, s := range r.n.cfg.Staff {
		if s.Name == name {
			return s
		}
	}
	panic("no staff " + name)
}

// call pages name about incident by the voice channel and returns the
// call's SID.
func (r *voiceRig) call(t *testing.T, incident, name string) string {
	t.Helper()
	sid, err := r.voice.Send(t.Context(), Message{To: r.staff(name), Incident: incident, Kind: "opened", Short: "mx1 (Incoming mail) is down"})
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func TestVoiceChannel(t *testing.T) {
	t.Parallel()
	r := startVoice(t)
	if r.voice.Name() != "voice" || r.voice.Provider() != "twilio" || !r.voice.Wakes() ||
		r.voice.Address(r.staff("Alice")) != alicePh || r.voice.Address(r.staff("Carol")) != "" {
		t.Errorf("channel %s/%s wakes %v", r.voice.Name(), r.voice.Provider(), r.voice.Wakes())
	}
	sid := r.call(t, "20261121-voice1", "Alice")
	calls := r.twilio.Calls()
	if len(calls) != 1 || calls[0].SID != sid || calls[0].To != alicePh || calls[0].From != "+447700900000" {
		t.Fatalf("calls %+v", calls)
	}
	action, _, err := twilioapi.GatherAction(calls[0].TwiML)
	if err != nil {
		t.Fatal(err)
	}
	if want := gatherURL(r.n.cfg.Notify, "20261121-voice1", r.staff("Alice")); action != want || !strings.HasPrefix(action, r.public+pathTwilioVoice+"20261121-voice1/") {
		t.Errorf("gather action %q, want %q", action, want)
	}
	if strings.Count(calls[0].TwiML, "<Say>mx1 (Incoming mail) is down</Say>") != 2 {
		t.Errorf("the call does not read the alarm twice: %s", calls[0].TwiML)
	}
	// The link in the email and the call's gather URL are signed apart.
	if link := r.n.ackURL("20261121-voice1", r.staff("Alice")); path(link)[len(pathAck):] == path(action)[len(pathTwilioVoice):] {
		t.Errorf("the gather URL's signature is the ack link's")
	}
}

func path(u string) string {
	p, _ := url.Parse(u)
	return p.Path
}

// TestVoiceKeypress: 1 pressed on a real call acknowledges as the person
// called, once; any other key acknowledges nothing.
func TestVoiceKeypress(t *testing.T) {
	t.Parallel()
	r := startVoice(t)
	ctx := t.Context()

	other := r.call(t, "20261121-voice2", "Alice")
	ans, err := r.twilio.PressAnswer(ctx, other, "2")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Status != 200 || ans.Body != `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Not acknowledged.</Say></Response>` {
		t.Errorf("key 2: %d %s", ans.Status, ans.Body)
	}
	if a := acks(t, r.b); a != nil {
		t.Fatalf("key 2 acknowledged: %+v", a)
	}

	sid := r.call(t, "20261121-voice2", "Bob")
	ans, err = r.twilio.PressAnswer(ctx, sid, "1")
	if err != nil {
		t.Fatal(err)
	}
	if ans.Status != 200 || ans.Body != `<?xml version="1.0" encoding="UTF-8"?><Response><Say>Acknowledged, thank you.</Say></Response>` ||
		!strings.HasPrefix(ans.Header.Get("Content-Type"), "text/xml") {
		t.Errorf("key 1: %d %s", ans.Status, ans.Body)
	}
	wait.For(t, "the acknowledgement", func() bool { return acks(t, r.b) != nil })
	if a := acks(t, r.b); a.Incident != "20261121-voice2" || a.By != "Bob" || a.Via != ackViaVoice {
		t.Errorf("acknowledgement %+v", a)
	}

	// The same signed request again, as someone who captured it would
	// send it: refused.
	if status, err := r.twilio.Press(ctx, sid, "1"); err != nil || status != http.StatusConflict {
		t.Errorf("replayed keypress: %d %v, want 409", status, err)
	}
	if !strings.Contains(r.logs.String(), "replayed keypress refused") {
		t.Errorf("the replay is not in the log:\n%s", r.logs)
	}
}

// TestVoiceKeypressForged: nothing but Twilio's signature over our signed
// URL, for a call to that person, acknowledges.
func TestVoiceKeypressForged(t *testing.T) {
	t.Parallel()
	r := startVoice(t)
	sid := r.call(t, "20261121-voice3", "Alice")
	action, _, err := twilioapi.GatherAction(r.twilio.Calls()[0].TwiML)
	if err != nil {
		t.Fatal(err)
	}
	form := func(to string) url.Values {
		return url.Values{"CallSid": {sid}, "AccountSid": {testSID}, "From": {"+447700900000"}, "To": {to},
			"Digits": {"1"}, "CallStatus": {"in-progress"}, "Direction": {"outbound-api"}}
	}
	bobURL := gatherURL(r.n.cfg.Notify, "20261121-voice3", r.staff("Bob"))
	tests := []struct {
		name   string
		url    string
		form   url.Values
		token  string // signs the request
		body   string // instead of the form
		status int
	}{
		{"signed with the wrong token", action, form(alicePh), "wrongtoken", "", http.StatusForbidden},
		{"unsigned", action, form(alicePh), "", "", http.StatusForbidden},
		{"path signature tampered", action + "x", form(alicePh), testToken, "", http.StatusForbidden},
		{"another incident in the path", strings.Replace(action, "voice3", "voice4", 1), form(alicePh), testToken, "", http.StatusForbidden},
		{"Bob's URL for a call to Alice", bobURL, form(alicePh), testToken, "", http.StatusForbidden},
		{"no CallSid", action, url.Values{"To": {alicePh}, "Digits": {"1"}}, testToken, "", http.StatusBadRequest},
		{"a body past the bound", action, form(alicePh), testToken, "Digits=1&x=" + strings.Repeat("a", maxGatherBody), http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.form.Encode()
			if tt.body != "" {
				body = tt.body
			}
			req, err := http.NewRequestWithContext(t.Context(), "POST", tt.url, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.token != "" {
				req.Header.Set("X-Twilio-Signature", twilioapi.Signature(tt.token, tt.url, tt.form))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("answered %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	if a := acks(t, r.b); a != nil {
		t.Errorf("a forged keypress acknowledged: %+v", a)
	}
}

func TestNewVoice(t *testing.T) {
	cfg := &config.Config{}
	if c, err := newVoice(cfg); c != nil || err != nil {
		t.Errorf("without Twilio: %v %v, want no channel", c, err)
	}
	cfg.Providers.Twilio = &config.Twilio{From: "Tocsin"}
	if c, err := newVoice(cfg); c != nil || err != nil {
		t.Errorf("from a name: %v %v, want no channel", c, err)
	}
}

// TestVoiceWithoutPublicURL: a notifier that Twilio cannot reach still
// calls; the call reads the alarm and takes no key.
func TestVoiceWithoutPublicURL(t *testing.T) {
	t.Parallel()
	r := startVoice(t)
	cfg := *r.n.cfg
	cfg.Notify.PublicURL = ""
	c, err := newVoice(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(t.Context(), Message{To: r.staff("Alice"), Incident: "20261121-voice5", Short: "mx1 is down"}); err != nil {
		t.Fatal(err)
	}
	if calls := r.twilio.Calls(); len(calls) != 1 || strings.Contains(calls[0].TwiML, "<Gather") || !strings.Contains(calls[0].TwiML, "mx1 is down") {
		t.Errorf("calls %+v", calls)
	}
}

// TestVoiceNothingToAcknowledge: a resolution, or an alert about no
// incident, is read out without asking for a key.
func TestVoiceNothingToAcknowledge(t *testing.T) {
	t.Parallel()
	r := startVoice(t)
	for _, m := range []Message{
		{To: r.staff("Alice"), Incident: "20261121-voice6", Kind: kindResolved, Short: "mx1 is up again"},
		{To: r.staff("Alice"), Kind: kindFailover, Short: "FAILOVER FAILING"},
	} {
		if _, err := r.voice.Send(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range r.twilio.Calls() {
		if strings.Contains(c.TwiML, "<Gather") {
			t.Errorf("asks for a key: %s", c.TwiML)
		}
	}
}
