package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliovoice"
)

const (
	chanVoice = "voice"
	// pathTwilioVoice is where Twilio posts the key pressed on one of our
	// calls: pathTwilioVoice + "{incident}/{who}/{sig}".
	pathTwilioVoice = "/twilio/voice/"
	// maxGatherBody bounds what a keypress may post; Twilio's form is a
	// few hundred bytes.
	maxGatherBody = 16 << 10
	// ackViaVoice is how an acknowledgement by a keypress is recorded.
	ackViaVoice = events.AckViaVoice
)

// dialer places one call that reads text out and posts a keypress to
// gatherURL, and returns the provider's id for it.
type dialer interface {
	Call(ctx context.Context, to, text, gatherURL string) (string, error)
}

// voiceChannel is the voice channel: a call to the person's phone that
// reads the short text out and takes 1 as an acknowledgement of the
// incident, posted to a URL signed for that incident and person.
type voiceChannel struct {
	dialer dialer
	gather func(incident string, s config.Staff) string
}

// newVoice is the voice channel over cfg's Twilio account, or nil when
// Twilio is not configured or its sender cannot be a caller ID (a name or
// a messaging service: only a number can call). Without notify.public_url
// and a link key the call cannot take a keypress; it still reads the
// alarm out, and the person acknowledges by SMS or by the email's link.
func newVoice(cfg *config.Config) (Channel, error) {
	t := cfg.Providers.Twilio
	if t == nil || !callerID.MatchString(t.From) {
		return nil, nil
	}
	c, err := twiliovoice.New(twiliovoice.Config{Account: twiliorest.Account{
		SID: t.AccountSID.Reveal(), AuthToken: t.AuthToken.Reveal(), APIURL: t.APIURL,
	}, From: t.From})
	if err != nil {
		return nil, err
	}
	nc := cfg.Notify
	return voiceChannel{
		dialer: c,
		gather: func(incident string, s config.Staff) string { return gatherURL(nc, incident, s) },
	}, nil
}

// callerID is a number in international form, the only sender a call
// can come from.
var callerID = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func (voiceChannel) Name() string                  { return chanVoice }
func (voiceChannel) Provider() string              { return "twilio" }
func (voiceChannel) Address(s config.Staff) string { return s.Phone }
func (voiceChannel) Wakes() bool                   { return true }
func (c voiceChannel) Send(ctx context.Context, m Message) (string, error) {
	// A resolution, or an alert about no incident, has nothing to
	// acknowledge: the call only reads it out.
	gather := ""
	if m.Incident != "" && m.Kind != kindResolved {
		gather = c.gather(m.Incident, m.To)
	}
	return c.dialer.Call(ctx, m.To.Phone, m.Short, gather)
}

// gatherURL is where Twilio posts the key s presses on a call about
// incident; "" when the notifier has no public address or no link key.
// Its path is signed like an acknowledgement link, but over other words,
// so that one is never the other.
func gatherURL(nc config.Notify, incident string, s config.Staff) string {
	if nc.PublicURL == "" || !nc.LinkKey.IsSet() {
		return ""
	}
	who := staffKey(s)
	return fmt.Sprintf("%s%s%s/%s/%s", strings.TrimRight(nc.PublicURL, "/"), pathTwilioVoice, incident, who, voiceSig(nc, incident, who))
}

func voiceSig(nc config.Notify, incident, who string) string {
	mac := hmac.New(sha256.New, []byte(nc.LinkKey.Reveal()))
	fmt.Fprintf(mac, "voice/%s/%s", incident, who)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// voiceGather takes the key pressed on one of our calls, served at
// "POST " + pathTwilioVoice + "{incident}/{who}/{sig}". It acts only on
// a request Twilio signed, to a URL we signed, about a call to that
// person's phone: 1 acknowledges the incident as them, once per call (a
// replayed request is refused), any other key acknowledges nothing.
func (n *Notifier) voiceGather(w http.ResponseWriter, r *http.Request, kv jetstream.KeyValue) {
	r.Body = http.MaxBytesReader(w, r.Body, maxGatherBody)
	incident, who, sig := r.PathValue("incident"), r.PathValue("who"), r.PathValue("sig")
	s, ok := n.staffByKey(who)
	nc := n.cfg.Notify
	if !nc.LinkKey.IsSet() || !ok || !events.ValidToken(incident) || !hmac.Equal([]byte(sig), []byte(voiceSig(nc, incident, who))) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if !n.fromTwilio(r) {
		n.log.Warn("keypress with a bad Twilio signature refused", "incident", incident, "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	if s.Phone == "" || r.PostForm.Get("To") != s.Phone {
		// Signed by Twilio, but for a call to someone else.
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	sid := r.PostForm.Get("CallSid")
	if !events.ValidToken(sid) {
		http.Error(w, "a keypress needs its CallSid", http.StatusBadRequest)
		return
	}
	say := func(text string) {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Say>%s</Say></Response>`, text)
	}
	if r.PostForm.Get("Digits") != "1" {
		say("Not acknowledged.")
		return
	}
	// A call acknowledges once: the same request again is a replay,
	// whatever it would acknowledge by now.
	done := "gather." + sid
	switch _, err := kv.Get(r.Context(), done); {
	case err == nil:
		n.log.Warn("replayed keypress refused", "incident", incident, "call", sid)
		http.Error(w, "this keypress was already handled", http.StatusConflict)
		return
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if err := n.acknowledge(r.Context(), incident, s.Name, ackViaVoice); err != nil {
		n.log.Error("acknowledgement by call not recorded", "incident", incident, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if _, err := kv.Create(r.Context(), done, []byte(incident)); err != nil && !bus.IsConflict(err) {
		// Acknowledged all the same; a replay would acknowledge again,
		// which the incident's first acknowledgement outlives.
		n.log.Warn("acknowledged, but the call could not be marked handled", "incident", incident, "err", err)
	}
	say("Acknowledged, thank you.")
}
