package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/services/failover/internal/webhook"
)

var secret = []byte("s3cret-hmac-key")

// receiver checks each request as a receiver should, by its own
// computation of the signature, and answers with status.
type receiver struct {
	mu     sync.Mutex
	status int
	delay  time.Duration
	got    []http.Header
	bodies []string
	bad    []string // why a request was refused
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status, delay := r.status, r.delay
	r.got = append(r.got, req.Header.Clone())
	r.bodies = append(r.bodies, string(body))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(req.Header.Get("X-Tocsin-Timestamp") + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	switch {
	case req.Method != http.MethodPost:
		r.bad = append(r.bad, "method "+req.Method)
	case req.Header.Get("Content-Type") != "application/json":
		r.bad = append(r.bad, "content type "+req.Header.Get("Content-Type"))
	case !hmac.Equal([]byte(req.Header.Get("X-Tocsin-Signature")), []byte(want)):
		r.bad = append(r.bad, "signature "+req.Header.Get("X-Tocsin-Signature"))
		status = http.StatusUnauthorized
	}
	r.mu.Unlock()
	time.Sleep(delay)
	w.WriteHeader(status)
	io.WriteString(w, http.StatusText(status))
}

func TestSend(t *testing.T) {
	now := time.Date(2026, 11, 21, 2, 15, 20, 0, time.UTC)
	tests := []struct {
		name      string
		status    int
		delay     time.Duration
		wantErr   string
		permanent bool
	}{
		{"accepted", http.StatusOK, 0, "", false},
		{"accepted without content", http.StatusNoContent, 0, "", false},
		{"server error", http.StatusBadGateway, 0, "answered 502 Bad Gateway", false},
		{"unavailable", http.StatusServiceUnavailable, 0, "answered 503", false},
		{"rate limited", http.StatusTooManyRequests, 0, "answered 429", false},
		{"request timeout", http.StatusRequestTimeout, 0, "answered 408", false},
		{"refused", http.StatusForbidden, 0, "answered 403 Forbidden: Forbidden", true},
		{"not found", http.StatusNotFound, 0, "answered 404", true},
		{"redirect", http.StatusFound, 0, "answered 302", true},
		{"too slow", http.StatusOK, 600 * time.Millisecond, "no answer within 200ms", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &receiver{status: tt.status, delay: tt.delay}
			srv := httptest.NewServer(r)
			defer srv.Close()
			c := webhook.New(srv.URL+"/hook?token=query-secret", secret, 200*time.Millisecond, func() time.Time { return now })
			body := []byte(`{"action":"remove","server":"web1"}`)
			err := c.Send(context.Background(), "web1/state/4/remove", body)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Send = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Send = %v, want an error containing %q", err, tt.wantErr)
			case err != nil && bus.IsPermanent(err) != tt.permanent:
				t.Errorf("permanent = %v, want %v (%v)", bus.IsPermanent(err), tt.permanent, err)
			}
			if err != nil && strings.Contains(err.Error(), "query-secret") {
				t.Errorf("the error shows the URL's query: %v", err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.got) != 1 {
				t.Fatalf("receiver got %d requests, want 1", len(r.got))
			}
			if len(r.bad) > 0 {
				t.Errorf("receiver refused the request: %v", r.bad)
			}
			h := r.got[0]
			if h.Get("X-Tocsin-Id") != "web1/state/4/remove" || h.Get("X-Tocsin-Timestamp") != strconv.FormatInt(now.Unix(), 10) || r.bodies[0] != string(body) {
				t.Errorf("request: headers %v, body %q", h, r.bodies[0])
			}
			if err := webhook.Verify(secret, h, []byte(r.bodies[0]), now.Add(time.Minute), 5*time.Minute); err != nil {
				t.Errorf("Verify of what was sent: %v", err)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	err := webhook.New(url, secret, time.Second, nil).Send(context.Background(), "id", []byte("{}"))
	if err == nil || bus.IsPermanent(err) {
		t.Errorf("Send to a closed port = %v, want an error worth a retry", err)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1795227320, 0)
	body := []byte(`{"a":1}`)
	good := func() http.Header {
		h := http.Header{}
		h.Set("X-Tocsin-Timestamp", "1795227320")
		h.Set("X-Tocsin-Signature", webhook.Sign(secret, "1795227320", body))
		return h
	}
	if err := webhook.Verify(secret, good(), body, now, time.Minute); err != nil {
		t.Fatalf("Verify of a good request: %v", err)
	}
	tests := []struct {
		name   string
		change func(h http.Header) ([]byte, time.Time, []byte)
		want   string
	}{
		{"other body", func(h http.Header) ([]byte, time.Time, []byte) { return []byte(`{"a":2}`), now, secret }, "does not match"},
		{"other secret", func(h http.Header) ([]byte, time.Time, []byte) { return body, now, []byte("guess") }, "does not match"},
		{"replayed later", func(h http.Header) ([]byte, time.Time, []byte) { return body, now.Add(10 * time.Minute), secret }, "a replay"},
		{"timestamp moved", func(h http.Header) ([]byte, time.Time, []byte) {
			h.Set("X-Tocsin-Timestamp", "1795227330")
			return body, now, secret
		}, "does not match"},
		{"no timestamp", func(h http.Header) ([]byte, time.Time, []byte) {
			h.Del("X-Tocsin-Timestamp")
			return body, now, secret
		}, "not a Unix time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			b, at, key := tt.change(h)
			if err := webhook.Verify(key, h, b, at, time.Minute); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
