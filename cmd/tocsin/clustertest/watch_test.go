package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/standin/smtpserver"
	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// incidentSeen is what the events stream told of one incident.
type incidentSeen struct {
	id         string
	datacentre string
	servers    []string // as opened
	opened     int      // opened events stored
	resolved   int      // resolved events stored
	openedAt   time.Time
}

// watcher follows the incidents on the events stream with an ordered
// consumer, which carries on across a change of stream leader.
type watcher struct {
	mu        sync.Mutex
	incidents map[string]*incidentSeen
	eventIDs  map[string]int
	bad       []string
	lastSeq   uint64 // the stream sequence of the newest event taken
}

func watchIncidents(t *testing.T, js jetstream.JetStream) *watcher {
	t.Helper()
	w := &watcher{incidents: map[string]*incidentSeen{}, eventIDs: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"incident.*.opened", "incident.*.resolved"},
	})
	if err != nil {
		t.Fatalf("follow incidents: %v", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		w.add(m.Subject(), m.Data())
		if md, err := m.Metadata(); err == nil {
			w.mu.Lock()
			w.lastSeq = max(w.lastSeq, md.Sequence.Stream)
			w.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("follow incidents: %v", err)
	}
	t.Cleanup(cc.Stop)
	return w
}

func (w *watcher) add(subject string, data []byte) {
	ev, err := events.Decode(subject, data)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.bad = append(w.bad, fmt.Sprintf("%s: %v", subject, err))
		return
	}
	w.eventIDs[ev.ID]++
	switch d := ev.Data.(type) {
	case *events.IncidentOpened:
		in := w.incident(d.Incident)
		in.opened++
		in.datacentre, in.openedAt = d.Datacentre, d.Opened
		in.servers = nil
		for _, a := range d.Servers {
			in.servers = append(in.servers, a.Server)
		}
	case *events.IncidentResolved:
		w.incident(d.Incident).resolved++
	}
}

func (w *watcher) incident(id string) *incidentSeen {
	in := w.incidents[id]
	if in == nil {
		in = &incidentSeen{id: id}
		w.incidents[id] = in
	}
	return in
}

// caughtUp waits until the watcher has taken every opened and resolved
// event the stream holds now. Its consumer, on a server that was killed,
// starts again only after missing heartbeats, some seconds on.
func (w *watcher) caughtUp(t *testing.T, js jetstream.JetStream, within time.Duration) {
	t.Helper()
	var want uint64
	ok := wait.Until(context.Background(), within, wait.Spaced(250*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, events.StreamEvents)
		if err != nil {
			return false
		}
		want = 0
		for _, subj := range []string{"incident.*.opened", "incident.*.resolved"} {
			m, err := s.GetLastMsgForSubject(ctx, subj)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return false
			}
			want = max(want, m.Sequence)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.lastSeq >= want
	}))
	if !ok {
		w.mu.Lock()
		defer w.mu.Unlock()
		t.Fatalf("the incidents followed stop at sequence %d of %s after %v; the stream has %d", w.lastSeq, events.StreamEvents, within, want)
	}
}

// snapshot returns a copy of every incident seen, by id.
func (w *watcher) snapshot() map[string]incidentSeen {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]incidentSeen{}
	for id, in := range w.incidents {
		c := *in
		c.servers = append([]string(nil), in.servers...)
		out[id] = c
	}
	return out
}

// duplicateEvents counts events stored more than once under the same id,
// and lists the events that did not decode.
func (w *watcher) duplicateEvents() (int, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.eventIDs {
		n += c - 1
	}
	return n, append([]string(nil), w.bad...)
}

// The kinds of message a person is sent, as the tests count them.
const (
	kindDown     = "DOWN" // the first page: an email saying OUTAGE or DEGRADED
	kindResolved = "RESOLVED"
	kindUpdate   = "UPDATE"   // a digest of changes, sent as often as notify.update_every allows
	kindWorse    = "NOW DOWN" // an SMS page: a box of the incident now serves nobody
	kindOther    = "other"
)

// delivery names one message to one person over one channel.
type delivery struct {
	channel, to, kind, incident string
}

func (d delivery) String() string {
	return fmt.Sprintf("%s to %s: %s of %s", d.channel, d.to, d.kind, d.incident)
}

// tally counts the messages that reached the SMTP server and the Twilio
// stand-in, per person, per kind and per incident. SMS name an incident by
// its short code, which codes maps back to the incident.
func tally(mail []smtpserver.Message, sms []twilioapi.Message, codes map[string]string) map[delivery]int {
	n := map[delivery]int{}
	for _, m := range mail {
		kind := kindOther
		for k, words := range map[string][]string{kindDown: {"OUTAGE", "DEGRADED"}, kindResolved: {"RESOLVED"}, kindUpdate: {"UPDATE"}, kindWorse: {"NOW DOWN"}} {
			for _, w := range words {
				if strings.Contains(m.Subject, "] "+w+":") {
					kind = k
				}
			}
		}
		for _, to := range m.To {
			n[delivery{"email", to, kind, m.Header.Get("X-Tocsin-Incident")}]++
		}
	}
	for _, m := range sms {
		// A page in a storm says first how far it reaches: "STORM: 250
		// boxes down in 4 datacentres. DOWN <code>: …".
		body := m.Body
		if rest, ok := strings.CutPrefix(body, "STORM: "); ok {
			if _, page, ok := strings.Cut(rest, ". "); ok {
				body = page
			}
		}
		// Every SMS about an incident names its code: "DOWN <code>: …",
		// "NOW DOWN: <box> … (<code>)", "STILL DOWN <code> after …",
		// "FLAPPING <code>: …", "ACK by … (<code>)", "RESOLVED <code>: …".
		kind, id := kindOther, ""
		for _, w := range strings.Fields(body) {
			if c, ok := codes[strings.Trim(w, "():.,;")]; ok {
				id = c
				break
			}
		}
		if id == "" {
			id = "no known code in " + strconv.Quote(m.Body)
		}
		switch f := strings.Fields(body); {
		case strings.HasPrefix(body, "NOW "):
			kind = kindWorse
		case len(f) > 0 && (f[0] == kindDown || f[0] == kindResolved || f[0] == kindUpdate):
			kind = f[0]
		case len(f) > 0:
			kind = f[0] // FLAPPING, STILL (an escalation's rung), ACK
		}
		n[delivery{"sms", m.To, kind, id}]++
	}
	return n
}

// expected is every email an incident brings, once each: the outage and
// its resolution, to Alice and Bob. SMS are checked by pages: a storm
// pages Alice once, not once per incident.
func expected(incidents []string, kinds ...string) []delivery {
	var out []delivery
	for _, id := range incidents {
		for _, k := range kinds {
			out = append(out,
				delivery{"email", aliceEmail, k, id},
				delivery{"email", bobEmail, k, id})
		}
	}
	return out
}

// pages says what is wrong with the SMS Alice got about incidents: none
// paged at all; an SMS twice; and, once they are resolved, a paged
// incident whose resolution she did not get by SMS, or one she was not
// paged about (a storm folds pages) whose resolution she did.
func pages(got map[delivery]int, incidents []string, resolved bool) []string {
	var problems []string
	paged := map[string]bool{}
	for d, c := range got {
		if d.channel != "sms" {
			continue
		}
		// Boxes going down one after another page again once per
		// notify.group_window (2s here): NOW DOWN may come more than
		// once, and each rung of an escalation says STILL.
		if c > 1 && d.kind != kindWorse && d.kind != "STILL" {
			problems = append(problems, fmt.Sprintf("%s ×%d", d, c))
		}
		// Any SMS about the incident rang her phone, so its resolution
		// rightly comes by SMS too.
		if d.kind != kindResolved {
			paged[d.incident] = true
		}
	}
	n := 0
	for _, id := range incidents {
		if paged[id] {
			n++
		}
		if !resolved {
			continue
		}
		switch r := got[delivery{"sms", alicePhone, kindResolved, id}]; {
		case paged[id] && r == 0:
			problems = append(problems, "no resolution SMS for "+id+", paged by SMS")
		case !paged[id] && r > 0:
			problems = append(problems, "a resolution SMS for "+id+", never paged by SMS")
		}
	}
	if n == 0 && len(incidents) > 0 {
		problems = append(problems, fmt.Sprintf("Alice was paged by SMS about none of %v", incidents))
	}
	sort.Strings(problems)
	return problems
}

// shortCode is the part of an incident id that an SMS names it by.
func shortCode(id string) string {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// compare says which wanted emails are missing and which arrived more
// than once; anything else that arrived, but for updates, worse news and
// SMS (see pages), is listed as unexpected. Updates and worse news may
// rightly come several times for one incident.
func compare(got map[delivery]int, want []delivery) (missing, duplicated, unexpected []string, dups int) {
	wanted := map[delivery]bool{}
	for _, d := range want {
		wanted[d] = true
		switch c := got[d]; {
		case c == 0:
			missing = append(missing, d.String())
		case c > 1:
			duplicated = append(duplicated, fmt.Sprintf("%s ×%d", d, c))
			dups += c - 1
		}
	}
	for d, c := range got {
		if !wanted[d] && d.kind != kindUpdate && d.kind != kindWorse && d.channel != "sms" {
			unexpected = append(unexpected, fmt.Sprintf("%s ×%d", d, c))
		}
	}
	sort.Strings(missing)
	sort.Strings(duplicated)
	sort.Strings(unexpected)
	return missing, duplicated, unexpected, dups
}

// updates counts the update digests that arrived.
func updates(got map[delivery]int) int {
	n := 0
	for d, c := range got {
		if d.kind == kindUpdate {
			n += c
		}
	}
	return n
}

// ctxFor is a context for one step of a test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
