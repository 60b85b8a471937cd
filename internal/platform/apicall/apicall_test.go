package apicall_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-3", 0},
		{"soon", 0},
		{"Sat, 21 Nov 2026 12:00:30 GMT", 30 * time.Second},
		{"Sat, 21 Nov 2026 11:59:00 GMT", 0},
	}
	for _, tt := range tests {
		if got := apicall.RetryAfter(tt.header, now); got != tt.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestRetry(t *testing.T) {
	for status, want := range map[int]bool{
		0: true, 200: true, 201: true, 302: true, 400: false, 401: false, 403: false, 404: false,
		408: true, 422: false, 429: true, 500: true, 503: true,
	} {
		if got := apicall.Retry(status); got != want {
			t.Errorf("Retry(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestScrub(t *testing.T) {
	got := apicall.Scrub("k=s+/= enc=s%2B%2F%3D id=x", apicall.Secret{Value: "s+/=", Name: "[secret]"}, apicall.Secret{Name: "[empty]"})
	if want := "k=[secret] enc=[secret] id=x"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}

func TestTimeout(t *testing.T) {
	for _, tt := range []struct {
		d, want time.Duration
		err     string
	}{
		{0, 10 * time.Second, ""},
		{3 * time.Second, 3 * time.Second, ""},
		{-time.Second, 0, "timeout -1s is negative"},
	} {
		got, err := apicall.Timeout(tt.d, 10*time.Second)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if got != tt.want || gotErr != tt.err {
			t.Errorf("Timeout(%v) = %v, %q; want %v, %q", tt.d, got, gotErr, tt.want, tt.err)
		}
	}
}

func TestCheckCredential(t *testing.T) {
	const stray = "token holds spaces or characters outside printable ASCII; check for a stray newline or quote"
	for s, want := range map[string]string{
		"EAAb+/=": "", "": "token is empty", "a b": stray, "tok\n": stray, "é": stray, "\x7f": stray,
	} {
		got := ""
		if err := apicall.CheckCredential("token", s); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckCredential(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestScrubURLError checks that a failure that quotes a URL with the
// token in its query shows neither the token nor less than the rest.
func TestScrubURLError(t *testing.T) {
	const token = "EAAsecret+/="
	c := &apicall.Caller{
		Provider: "facebook", Server: "graph", Timeout: 5 * time.Second,
		Scrub:        func(s string) string { return apicall.Scrub(s, apicall.Secret{Value: token, Name: "[token]"}) },
		SecretParams: map[string]string{"access_token": "[token]"},
		Client: &http.Client{Transport: roundTrip(func(*http.Request) (*http.Response, error) {
			return nil, errors.New("boom")
		})},
	}
	endpoint := "https://graph.example/v21.0/1/feed?access_token=" + url.PathEscape(token) + "&x=1"
	_, err := c.Post(t.Context(), "post", endpoint, "text/plain", nil)
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("got %v, want a *url.Error among the causes", err)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%#v", ue), ue.URL} {
		if strings.Contains(text, "EAAsecret") {
			t.Errorf("%s shows the token", text)
		}
	}
	if !strings.Contains(err.Error(), "x=1") || !strings.Contains(err.Error(), "boom") || !strings.HasPrefix(err.Error(), "facebook: post: ") {
		t.Errorf("scrubbed too much: %v", err)
	}
	if !bus.Retryable(err) {
		t.Errorf("no answer is worth a retry: %v", err)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestPostSaysWhyItEnded checks that a call the timeout ends says so,
// and that a redirect comes back as the answer.
func TestPostSaysWhyItEnded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := &apicall.Caller{Provider: "x", Server: "x", Timeout: 200 * time.Millisecond}
	c.Client = apicall.Bound(&http.Client{Transport: apicall.Transport()}, c.Timeout)

	_, err := c.Post(context.Background(), "post", srv.URL+"/slow", "application/json", []byte("{}"))
	if err == nil || !strings.Contains(err.Error(), "x: post: x did not answer within 200ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the timeout named", err)
	}
	ans, err := c.Post(context.Background(), "post", srv.URL+"/moved", "application/json", []byte("{}"))
	if err != nil || ans.Status != http.StatusFound {
		t.Errorf("got %+v, %v; want the 302 itself", ans, err)
	}
}
