package twiliosms

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin/twilioapi"
	"github.com/tocsin-alarm/tocsin/internal/testkit/providertest"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/twiliorest"
)

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+447700900001", "+44…001"},
		{"+15005550006", "+15…006"},
		{"+4412", "…"},
		{"", "…"},
		{"+44770090000１", "…"},
	}
	for _, tt := range tests {
		if got := mask(tt.in); got != tt.want {
			t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDefaultIsTwilio checks that without an API URL requests go to
// https://api.twilio.com, whatever TWILIO_EDGE and TWILIO_REGION say:
// the stand-in's transport lets through only requests for Twilio's hosts
// and sends them to the stand-in.
func TestDefaultIsTwilio(t *testing.T) {
	account, token := twilioapi.NewSID("AC"), strings.Repeat("ab", 16)
	s := twilioapi.Start(t, account, token)
	t.Setenv("TWILIO_EDGE", "dublin")
	t.Setenv("TWILIO_REGION", "ie1")

	snd, err := New(Config{Account: twiliorest.Account{SID: account, AuthToken: token}, From: "+447700900999"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &providertest.Recorder{Base: s.Transport()}
	snd.acct.Base = rec

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := snd.Send(ctx, "+447700900001", "x"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := "https://api.twilio.com/2010-04-01/Accounts/" + account + "/Messages.json"
	if seen := rec.URLs(); len(seen) != 1 || seen[0] != want {
		t.Errorf("requests went to %v, want %s", seen, want)
	}
}
