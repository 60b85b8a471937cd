package failover

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

const hookSecret = "hook-s3cret"

// receiver is a webhook endpoint on loopback that checks each request as a
// careful receiver would (the signature over the timestamp and the raw
// body, the timestamp fresh) and fails the first failures requests with
// status.
type receiver struct {
	mu       sync.Mutex
	failures int
	status   int
	got      []hookRequest
}

type hookRequest struct {
	id   string
	body WebhookBody
	bad  string // why the request would be refused
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	hr := hookRequest{id: req.Header.Get("X-Tocsin-Id")}
	ts := req.Header.Get("X-Tocsin-Timestamp")
	m := hmac.New(sha256.New, []byte(hookSecret))
	m.Write([]byte(ts + "." + string(raw)))
	sec, err := strconv.ParseInt(ts, 10, 64)
	switch {
	case !hmac.Equal([]byte(req.Header.Get("X-Tocsin-Signature")), []byte("sha256="+hex.EncodeToString(m.Sum(nil)))):
		hr.bad = "bad signature"
	case err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute:
		hr.bad = "stale timestamp " + ts
	case json.Unmarshal(raw, &hr.body) != nil:
		hr.bad = "body is not JSON: " + string(raw)
	}
	r.mu.Lock()
	r.got = append(r.got, hr)
	fail := r.failures > 0
	if fail {
		r.failures--
	}
	r.mu.Unlock()
	switch {
	case hr.bad != "":
		http.Error(w, hr.bad, http.StatusUnauthorized)
	case fail:
		http.Error(w, "try later", r.status)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (r *receiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.got...)
}

func webhookWorld(t *testing.T, r *receiver) *world {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return newWorld(t, fmt.Sprintf(`{webhook: {url: "%s/failover?key=query-token", secret_env: HOOK_SECRET, timeout: 2s}}`, srv.URL),
		map[string]string{"HOOK_SECRET": hookSecret})
}

// TestWebhookRetried: a webhook that keeps failing is tried again with the
// same id, staff are asked to act from the third failure, and the action
// is done once the receiver takes it.
func TestWebhookRetried(t *testing.T) {
	r := &receiver{failures: 3, status: http.StatusServiceUnavailable}
	w := webhookWorld(t, r)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)
	down := w.change(t, "web1", events.StateSuspect, events.StateDown)

	wait.For(t, "the removal done", func() bool { return len(w.actions(t, "web1")) == 4 })
	want := "remove webhook retrying 1\nremove webhook retrying 2\nremove webhook retrying 3\nremove webhook done 4"
	if got := summary(w.actions(t, "web1")); got != want {
		t.Errorf("actions:\n%s\nwant:\n%s", got, want)
	}
	for i, a := range w.actions(t, "web1")[:3] {
		if a.Alert != (i == 2) || a.Error == "" || a.FailingSince.IsZero() {
			t.Errorf("failure %d announced as %+v: want an error, since when, and an alert from the third", i+1, a)
		}
	}
	got := r.requests()
	if len(got) != 4 {
		t.Fatalf("receiver got %d requests, want 4", len(got))
	}
	for i, hr := range got {
		if hr.bad != "" {
			t.Errorf("request %d: %s", i+1, hr.bad)
		}
		if hr.id != down.ID+"/remove" || hr.body.ID != hr.id {
			t.Errorf("request %d has id %q (body %q), want %q on every attempt", i+1, hr.id, hr.body.ID, down.ID+"/remove")
		}
	}
	b := got[3].body
	if b.Action != events.ActionRemove || b.Server != "web1" || b.Name != "web1" || b.Box != "web" {
		t.Errorf("body: %+v", b)
	}
	if ev, err := events.Decode(events.SubjectServerChanged("web1"), b.Change); err != nil || ev.ID != down.ID {
		t.Errorf("the body's change: %v, %v; want the down change %s", ev.ID, err, down.ID)
	}

	w.change(t, "web1", events.StateDown, events.StateUp)
	wait.For(t, "the restoration done", func() bool { return len(w.actions(t, "web1")) == 5 })
	if got := r.requests(); len(got) != 5 || got[4].body.Action != events.ActionRestore || got[4].bad != "" {
		t.Errorf("after the recovery the receiver got %+v", got[len(got)-1])
	}
}

// TestWebhookRefused: a 4xx is not tried again; staff are told at once,
// and the change is set aside in the dead-letter stream with why.
func TestWebhookRefused(t *testing.T) {
	r := &receiver{failures: 100, status: http.StatusUnprocessableEntity}
	w := webhookWorld(t, r)
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	w.run(t)
	w.change(t, "web1", events.StateSuspect, events.StateDown)

	wait.For(t, "the refusal announced", func() bool { return len(w.actions(t, "web1")) == 1 })
	a := w.actions(t, "web1")[0]
	if a.Outcome != events.OutcomeFailed || !a.Alert || a.Error == "" {
		t.Errorf("refusal announced as %+v", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var dead []string
	wait.For(t, "the change set aside", func() bool {
		stream, err := w.b.JS.Stream(ctx, events.StreamDeadLetters)
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.GetLastMsgForSubject(ctx, events.SubjectDeadLetter("failover"))
		if err == nil {
			dead = append(dead, m.Header.Get(events.HeaderDeadReason))
		}
		return err == nil
	})
	time.Sleep(300 * time.Millisecond)
	if n := len(r.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1: a refusal is not retried", n)
	}
	if len(dead) == 0 || !strings.Contains(dead[0], "answered 422") || strings.Contains(dead[0], "query-token") {
		t.Errorf("dead-letter reason %q: want the answer, without the URL's query", dead)
	}
}

// TestRedeliveryActsOnce hands failover the same changes again, and an old
// one after a newer: nothing is done twice, and nothing stale is done.
func TestRedeliveryActsOnce(t *testing.T) {
	r := &receiver{}
	w := webhookWorld(t, r)
	s := w.service()
	ctx := context.Background()
	w.change(t, "web2", events.StateUnknown, events.StateUp)
	down := w.change(t, "web1", events.StateSuspect, events.StateDown)
	for i := range 3 {
		if err := s.handle(ctx, w.st, down); err != nil {
			t.Fatalf("handling %d: %v", i+1, err)
		}
	}
	if n := len(r.requests()); n != 1 {
		t.Errorf("the down change handled three times sent %d requests, want 1", n)
	}
	up := w.change(t, "web1", events.StateDown, events.StateUp)
	for _, ev := range []events.Event{up, down, up, down} {
		if err := s.handle(ctx, w.st, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := r.requests()
	if len(got) != 2 || got[0].body.Action != events.ActionRemove || got[1].body.Action != events.ActionRestore {
		t.Errorf("requests: %+v, want one remove and one restore", got)
	}
	if got, want := summary(w.actions(t, "web1")), "remove webhook done 1\nrestore webhook done 1"; got != want {
		t.Errorf("actions:\n%s\nwant:\n%s", got, want)
	}

	// A change of a server the verifier has moved on from is history.
	old := w.change(t, "web1", events.StateUp, events.StateSuspect)
	w.change(t, "web1", events.StateSuspect, events.StateUp)
	stale := events.New(old.ID+"x", "verifier", old.Time, &events.ServerStateChanged{
		Server: "web1", Box: "web", From: events.StateSuspect, To: events.StateDown, Since: old.Time.Add(-time.Millisecond),
	})
	if err := s.handle(ctx, w.st, stale); err != nil {
		t.Fatal(err)
	}
	if n := len(r.requests()); n != 2 {
		t.Errorf("a stale down change sent a request")
	}
}
