package fbposter

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/apicall"
	"github.com/tocsin-alarm/tocsin/internal/standin/graphapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
)

// TestDefaultIsGraph checks that without an API URL or version calls go to
// https://graph.facebook.com/v21.0: the stand-in's transport carries only
// requests for Graph's host.
func TestDefaultIsGraph(t *testing.T) {
	s := graphapi.Start(t, "42", "tok")
	p, err := New(Config{PageID: "42", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &providertest.Recorder{Base: s.Transport()}
	p.call.Client = apicall.Bound(&http.Client{Transport: rec}, p.cfg.Timeout)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pid, err := p.Post(ctx, "web-3 is down", "")
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if _, err := p.Comment(ctx, pid, "web-3 is up"); err != nil {
		t.Fatalf("Comment: %v", err)
	}
	want := []string{"https://graph.facebook.com/v21.0/42/feed", "https://graph.facebook.com/v21.0/" + pid + "/comments"}
	if seen := rec.URLs(); len(seen) != 2 || seen[0] != want[0] || seen[1] != want[1] {
		t.Errorf("requests went to %v, want %v", seen, want)
	}
}

func TestRegainAccess(t *testing.T) {
	tests := []struct {
		usage, retryAfter string
		want              time.Duration
	}{
		{"", "", 0},
		{`{"42":[{"type":"pages","call_count":100,"estimated_time_to_regain_access":3}]}`, "", 3 * time.Minute},
		{`{"42":[{"estimated_time_to_regain_access":3},{"estimated_time_to_regain_access":7}],"43":[{"estimated_time_to_regain_access":5}]}`, "", 7 * time.Minute},
		{`{"42":[{"estimated_time_to_regain_access":0}]}`, "30", 30 * time.Second},
		{`not JSON`, "", 0},
		{"", "-5", 0},
	}
	p := &Poster{now: time.Now}
	for _, tt := range tests {
		h := http.Header{}
		if tt.usage != "" {
			h.Set("X-Business-Use-Case-Usage", tt.usage)
		}
		if tt.retryAfter != "" {
			h.Set("Retry-After", tt.retryAfter)
		}
		if got := p.regainAccess(h); got != tt.want {
			t.Errorf("usage %q, Retry-After %q: got %v, want %v", tt.usage, tt.retryAfter, got, tt.want)
		}
	}
}

func TestForms(t *testing.T) {
	if got, want := postForm("a b", "", "t&k"), "access_token=t%26k&message=a+b"; got != want {
		t.Errorf("postForm = %s, want %s", got, want)
	}
	if got, want := postForm("m", "https://s.example/?a=1", "t"), "access_token=t&link=https%3A%2F%2Fs.example%2F%3Fa%3D1&message=m"; got != want {
		t.Errorf("postForm = %s, want %s", got, want)
	}
	if got, want := commentForm("ok", "t"), "access_token=t&message=ok"; got != want {
		t.Errorf("commentForm = %s, want %s", got, want)
	}
}
