package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/twilio/twilio-go/client"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The paths the notifier serves under notify.public_url.
const (
	pathTwilioSMS    = "/twilio/sms"    // Twilio's inbound-message webhook: replies to our SMS
	pathTwilioStatus = "/twilio/status" // Twilio's status callbacks for the SMS we sent
	pathAck          = "/ack/"          // signed acknowledgement links from the emails
)

// ackURL is the signed link in a person's email that acknowledges the
// incident as them; "" when the notifier has no public address.
func (n *Notifier) ackURL(incident string, s config.Staff) string {
	nc := n.cfg.Notify
	if nc.PublicURL == "" || !nc.LinkKey.IsSet() {
		return ""
	}
	who := staffKey(s)
	return fmt.Sprintf("%s%s%s/%s/%s", strings.TrimRight(nc.PublicURL, "/"), pathAck, incident, who, n.linkSig(incident, who))
}

func (n *Notifier) linkSig(incident, who string) string {
	mac := hmac.New(sha256.New, []byte(n.cfg.Notify.LinkKey.Reveal()))
	fmt.Fprintf(mac, "%s/%s", incident, who)
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:16])
}

// serve answers acknowledgement links and Twilio's webhooks until ctx ends.
func (n *Notifier) serve(ctx context.Context, kv jetstream.KeyValue) error {
	ln := n.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.Notify.Listen); err != nil {
			return fmt.Errorf("notifier: listen on %s: %w", n.cfg.Notify.Listen, err)
		}
	}
	return n.serveOn(ctx, ln, kv, httpguard.DefaultLimits())
}

// serveOn serves on ln, each connection bounded by limits, until ctx ends.
func (n *Notifier) serveOn(ctx context.Context, ln net.Listener, kv jetstream.KeyValue, limits httpguard.Limits) error {
	srv := httpguard.Server(n.handler(kv), limits, n.log)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	n.log.Info("serving acknowledgements", "listen", ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// What one client may ask of the acknowledgement server. A person opens a
// link and presses its button; Twilio posts a reply or a few status
// callbacks per SMS. Beyond that a client is guessing signatures or
// replaying webhooks.
const (
	linkRate, linkBurst       = 1, 10 // a second, at once
	webhookRate, webhookBurst = 5, 50
	guardClients              = 10000 // remembered at once
)

func (n *Notifier) handler(kv jetstream.KeyValue) http.Handler {
	return n.guard(n.routes(kv))
}

// routes are the server's endpoints, unguarded.
func (n *Notifier) routes(kv jetstream.KeyValue) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathTwilioSMS, func(w http.ResponseWriter, r *http.Request) { n.inboundSMS(w, r, kv) })
	mux.HandleFunc("POST "+pathTwilioStatus, func(w http.ResponseWriter, r *http.Request) { n.smsStatus(w, r, kv) })
	mux.HandleFunc(pathAck+"{incident}/{who}/{sig}", func(w http.ResponseWriter, r *http.Request) { n.ackLink(w, r) })
	mux.HandleFunc("POST "+pathTwilioVoice+"{incident}/{who}/{sig}", func(w http.ResponseWriter, r *http.Request) { n.voiceGather(w, r, kv) })
	return http.MaxBytesHandler(mux, 64<<10)
}

// guard limits each client (behind notify.trusted_proxies), the links
// and the webhooks each at their own pace, and sets the headers that keep
// every answer from being framed, sniffed or followed by a Referer: an
// acknowledgement link's path is its signature.
func (n *Notifier) guard(next http.Handler) http.Handler {
	proxies := httpguard.Proxies(n.cfg.Notify.Proxies)
	links := httpguard.NewLimiter(linkRate, linkBurst, guardClients, proxies, nil)
	hooks := httpguard.NewLimiter(webhookRate, webhookBurst, guardClients, proxies, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpguard.SecureHeaders(w.Header(), "default-src 'none'; frame-ancestors 'none'")
		l := links
		if strings.HasPrefix(r.URL.Path, "/twilio/") {
			l = hooks
		}
		if ok, wait := l.Allow(httpguard.Key(proxies.Client(r))); !ok {
			httpguard.TooMany(w, wait, "too many requests; try again later")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fromTwilio checks a webhook's X-Twilio-Signature against the URL Twilio
// was given, which behind a proxy is not the one this server sees.
func (n *Notifier) fromTwilio(r *http.Request) bool {
	t := n.cfg.Providers.Twilio
	if t == nil || r.ParseForm() != nil {
		return false
	}
	params := map[string]string{}
	for k, v := range r.PostForm {
		params[k] = v[0]
	}
	v := client.NewRequestValidator(t.AuthToken.Reveal())
	return v.Validate(strings.TrimRight(n.cfg.Notify.PublicURL, "/")+r.URL.Path, params, r.Header.Get("X-Twilio-Signature"))
}

// inboundSMS takes a reply to one of our SMS: "ACK", or "ACK <code>" for
// an incident other than the last one the person was paged about.
func (n *Notifier) inboundSMS(w http.ResponseWriter, r *http.Request, kv jetstream.KeyValue) {
	if !n.fromTwilio(r) {
		n.log.Warn("webhook with a bad Twilio signature refused", "path", r.URL.Path, "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	reply := func(text string) {
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>%s</Message></Response>", template.HTMLEscapeString(text))
	}
	sid := r.PostForm.Get("MessageSid")
	if !events.ValidToken(sid) {
		http.Error(w, "a message needs its MessageSid", http.StatusBadRequest)
		return
	}
	// A message is acted on once: the same request sent again (Twilio
	// retrying, or someone replaying a captured one later) acknowledges
	// nothing new, whatever incident is the person's latest by then.
	done := "inbound." + sid
	switch e, err := kv.Get(r.Context(), done); {
	case err == nil:
		reply(fmt.Sprintf("Acknowledged %s.", shortCode(string(e.Value()))))
		return
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	s, ok := n.staffByPhone(r.PostForm.Get("From"))
	if !ok {
		reply("This number is not on the staff list.")
		return
	}
	words := strings.Fields(strings.ToUpper(r.PostForm.Get("Body")))
	if len(words) == 0 || (words[0] != "ACK" && words[0] != "OK") {
		reply("Reply ACK to acknowledge the last incident, or ACK and its code.")
		return
	}
	key := "last." + staffKey(s)
	if len(words) > 1 {
		key = "code." + strings.ToLower(words[1])
	}
	e, err := kv.Get(r.Context(), key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		reply("No incident found to acknowledge.")
		return
	case err != nil:
		// Not "no incident": the bus did not answer, and an acknowledgement
		// lost here leaves the page ringing. Twilio retries a 503.
		n.log.Warn("an SMS acknowledgement could not be looked up; Twilio retries it", "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	incident := string(e.Value())
	if err := n.acknowledge(r.Context(), incident, s.Name, events.AckViaSMS); err != nil {
		n.log.Error("acknowledgement by SMS not recorded", "incident", incident, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable) // Twilio retries
		return
	}
	if _, err := kv.Create(r.Context(), done, []byte(incident)); err != nil && !bus.IsConflict(err) {
		n.log.Warn("acknowledged, but the message could not be marked handled; Twilio's retry acknowledges again", "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	reply(fmt.Sprintf("Acknowledged %s. Thank you, %s.", shortCode(incident), s.Name))
}

// smsStatus records what Twilio says became of an SMS.
func (n *Notifier) smsStatus(w http.ResponseWriter, r *http.Request, kv jetstream.KeyValue) {
	if !n.fromTwilio(r) {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	sid := r.PostForm.Get("MessageSid")
	if !events.ValidToken(sid) {
		http.Error(w, "bad MessageSid", http.StatusBadRequest)
		return
	}
	b, _ := json.Marshal(map[string]string{
		"status": r.PostForm.Get("MessageStatus"), "error_code": r.PostForm.Get("ErrorCode"), "at": n.now().UTC().Format(time.RFC3339),
	})
	if _, err := kv.Put(r.Context(), "sms."+sid, b); err != nil {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if st := r.PostForm.Get("MessageStatus"); st == "failed" || st == "undelivered" {
		n.log.Warn("SMS not delivered by the network", "sid", sid, "status", st, "error_code", r.PostForm.Get("ErrorCode"))
	}
	w.WriteHeader(http.StatusNoContent)
}

// ackStyle is the acknowledgement page's one style sheet, allowed by its
// hash: the page runs no script and takes nothing from elsewhere.
const ackStyle = `body { font-family: sans-serif; max-width: 32em; margin: 2em auto; padding: 0 1em; }
button { font-size: 1.2em; padding: 0.5em 1.5em; }`

var ackPolicy = "default-src 'none'; style-src " + httpguard.Hash(ackStyle) + "; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

var ackPage = template.Must(template.New("ack").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Acknowledge {{.Incident}}</title><style>` + ackStyle + `</style></head>
<body>
{{if .Done}}<h1>Acknowledged</h1><p>Incident {{.Incident}} is yours, {{.Name}}. The others will not be paged again for it.</p>
{{else}}<h1>Acknowledge incident {{.Incident}}?</h1>
<form method="post"><button type="submit">Acknowledge as {{.Name}}</button></form>
<p>Opening this page alone does nothing, so that a mail scanner following links cannot acknowledge for you.</p>{{end}}
</body></html>
`))

// ackLink serves a signed link: a page on GET, the acknowledgement on POST.
func (n *Notifier) ackLink(w http.ResponseWriter, r *http.Request) {
	incident, who, sig := r.PathValue("incident"), r.PathValue("who"), r.PathValue("sig")
	want := n.linkSig(incident, who)
	s, ok := n.staffByKey(who)
	if !n.cfg.Notify.LinkKey.IsSet() || !hmac.Equal([]byte(sig), []byte(want)) || !ok || !events.ValidToken(incident) {
		http.Error(w, "this link is not valid", http.StatusForbidden)
		return
	}
	page := struct {
		Incident, Name string
		Done           bool
	}{incident, s.Name, false}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		if err := n.acknowledge(r.Context(), incident, s.Name, events.AckViaLink); err != nil {
			n.log.Error("acknowledgement by link not recorded", "incident", incident, "err", err)
			http.Error(w, "could not record it; try again", http.StatusServiceUnavailable)
			return
		}
		page.Done = true
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	httpguard.SecureHeaders(w.Header(), ackPolicy)
	_ = ackPage.Execute(w, page)
}

// acknowledge publishes the acknowledgement; the first one stands.
func (n *Notifier) acknowledge(ctx context.Context, incident, by, via string) error {
	return Acknowledge(ctx, n.bus.Publish, incident, by, via, n.now())
}

// Acknowledge publishes that by took incident on. Its id is the incident's,
// so that acknowledging twice within the stream's duplicate window stores
// one event; later ones are harmless, the notifier keeps the first.
func Acknowledge(ctx context.Context, publish func(context.Context, events.Event, ...jetstream.PublishOpt) error, incident, by, via string, now time.Time) error {
	a := &events.IncidentAcknowledged{Incident: incident, By: by, Via: via, At: now.UTC()}
	return publish(ctx, events.New(incident+"/acknowledged", "notifier", now, a))
}

func (n *Notifier) staffByPhone(phone string) (config.Staff, bool) {
	for _, s := range n.cfg.Staff {
		if s.Phone != "" && s.Phone == phone {
			return s, true
		}
	}
	return config.Staff{}, false
}

func (n *Notifier) staffByKey(key string) (config.Staff, bool) {
	for _, s := range n.cfg.Staff {
		if staffKey(s) == key {
			return s, true
		}
	}
	return config.Staff{}, false
}
