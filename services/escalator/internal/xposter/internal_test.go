package xposter

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/xapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

// TestDefaultIsX checks that without an API URL posts go to
// https://api.x.com/2/tweets, signed for that URL: the stand-in's
// transport carries only requests for X's hosts, and checks the signature
// against the URL the client signed.
func TestDefaultIsX(t *testing.T) {
	creds := xapi.Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "1-tk", TokenSecret: "ts"}
	s := xapi.Start(t, creds)
	p, err := New(Config{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "1-tk", TokenSecret: "ts"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &providertest.Recorder{Base: s.Transport()}
	p.call.Client = p.newClient(rec)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := p.Post(ctx, "web-3 is down", ""); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if want, seen := "https://api.x.com/2/tweets", rec.URLs(); len(seen) != 1 || seen[0] != want {
		t.Errorf("requests went to %v, want %s", seen, want)
	}
}

func TestRateLimitReset(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	p := &Poster{now: func() time.Time { return now }}
	tests := []struct {
		reset, retryAfter string
		want              time.Duration
	}{
		{"", "", 0},
		{"1795262430", "", 30 * time.Second}, // 12:00:30
		{"1795262400", "", 0},                // now
		{"1795262000", "7", 0},               // past: the window has started again
		{"", "7", 7 * time.Second},
		{"soon", "-3", 0},
		{" 1795263300 ", "", 15 * time.Minute},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.reset != "" {
			h.Set("x-rate-limit-reset", tt.reset)
		}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		if got := p.rateLimitReset(h); got != tt.want {
			t.Errorf("reset %q, Retry-After %q: got %v, want %v", tt.reset, tt.retryAfter, got, tt.want)
		}
	}
}

func TestRequestBody(t *testing.T) {
	tests := []struct{ text, replyTo, want string }{
		{"a", "", `{"text":"a"}`},
		{"a", "1", `{"text":"a","reply":{"in_reply_to_tweet_id":"1"}}`},
		{"<&>\u2028", "", `{"text":"<&>\u2028"}`},
	}
	for _, tt := range tests {
		if got := string(requestBody(tt.text, tt.replyTo)); got != tt.want {
			t.Errorf("requestBody(%q, %q) = %s, want %s", tt.text, tt.replyTo, got, tt.want)
		}
	}
}
