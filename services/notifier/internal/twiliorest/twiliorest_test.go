package twiliorest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"
)

// TestTransport checks that a request goes below the configured API URL,
// that the answer's status and Retry-After are noted, and that the body
// twilio-go reads is the whole answer.
func TestTransport(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		w.Header().Set("Retry-After", "4")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"code":20429}`)
	}))
	defer srv.Close()
	apiURL, err := url.Parse(srv.URL + "/proxy/")
	if err != nil {
		t.Fatal(err)
	}

	tr := NewTransport(t.Context(), srv.Client().Transport, apiURL, time.Now)
	resp, err := (&http.Client{Transport: tr}).Get("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := path, "/proxy/2010-04-01/Accounts/AC1/Messages.json"; got != want {
		t.Errorf("request went to %s, want %s", got, want)
	}
	if got, want := tr.Answer(), (Answer{Status: 429, RetryAfter: 4 * time.Second}); got != want {
		t.Errorf("Answer() = %+v, want %+v", got, want)
	}
	if got, want := string(body), `{"code":20429}`; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

// TestTransportEndsWithCallContext checks that ending the call's context
// ends a request that the server has not answered, and says why.
func TestTransportEndsWithCallContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	why := errors.New("the alarm was acknowledged")
	ctx, cancel := context.WithCancelCause(t.Context())
	tr := NewTransport(ctx, srv.Client().Transport, nil, time.Now)
	time.AfterFunc(50*time.Millisecond, func() { cancel(why) })
	_, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if !errors.Is(err, why) {
		t.Errorf("Get: %v, want it to end with %q", err, why)
	}
}

func TestFailure(t *testing.T) {
	scrub := func(s string) string { return strings.ReplaceAll(s, "+447700900001", "+44…001") }
	rest := func(status int) error {
		return &client.TwilioRestError{Status: status, Code: 21211, Message: "The 'To' number +447700900001 is not valid.", MoreInfo: "https://www.twilio.com/docs/errors/21211"}
	}
	tests := []struct {
		name      string
		err       error
		ans       Answer
		wantRetry bool
		wantText  string
	}{
		{"no answer", errors.New("connection refused"), Answer{}, true,
			"twilio: send sms to +44…001: connection refused"},
		{"invalid number", rest(400), Answer{Status: 400}, false,
			"twilio: send sms to +44…001: twilio answered 400, error 21211: The 'To' number +44…001 is not valid. (https://www.twilio.com/docs/errors/21211)"},
		{"status only in the error", rest(401), Answer{}, false,
			"twilio: send sms to +44…001: twilio answered 401, error 21211: The 'To' number +44…001 is not valid. (https://www.twilio.com/docs/errors/21211)"},
		{"too many requests", rest(429), Answer{Status: 429, RetryAfter: 3 * time.Second}, true,
			"twilio: send sms to +44…001: twilio answered 429, error 21211: The 'To' number +44…001 is not valid. (https://www.twilio.com/docs/errors/21211); retry after 3s"},
		{"request timeout", errors.New("408"), Answer{Status: 408}, true,
			"twilio: send sms to +44…001: twilio answered 408: 408"},
		{"server error not in json", errors.New("invalid character '<'"), Answer{Status: 502}, true,
			"twilio: send sms to +44…001: twilio answered 502: invalid character '<'"},
		{"accepted without a sid", errors.New("answer 201 holds no message SID"), Answer{Status: 201}, true,
			"twilio: send sms to +44…001: twilio answered 201: answer 201 holds no message SID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Failure(t.Context(), tt.err, tt.ans, "send sms to +44…001", scrub)
			if e.Retry != tt.wantRetry {
				t.Errorf("Retry = %v, want %v", e.Retry, tt.wantRetry)
			}
			if e.Text != tt.wantText {
				t.Errorf("Text = %q\nwant %q", e.Text, tt.wantText)
			}
			if e.RetryAfter != tt.ans.RetryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.ans.RetryAfter)
			}
			var got *client.TwilioRestError
			if errors.As(e, &got) && strings.Contains(got.Message, "+447700900001") {
				t.Errorf("Twilio's error still holds the number: %q", got.Message)
			}
		})
	}
}

func TestFailureSaysWhyContextEnded(t *testing.T) {
	why := errors.New("twilio did not answer within 10s")
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(why)
	e := Failure(ctx, context.Canceled, Answer{}, "call +44…01", func(s string) string { return s })
	if !e.Retry || !errors.Is(e, why) || !strings.Contains(e.Text, why.Error()) {
		t.Errorf("Failure = %+v (%q), want a retry that says %q", e, e.Text, why)
	}
}

func TestScrub(t *testing.T) {
	short := func(n string) string { return n[:3] + "…" }
	got := Scrub("token tok123 to +447700900001 or 447700900001, not +4412", "tok123", "+447700900001", short)
	if want := "token [auth token] to +44… or +44…, not +4412"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
}
