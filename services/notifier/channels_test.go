package notifier

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// voice is a channel that wakes people, as a voice call would: adding one
// is an adapter and a line of wiring.
type voice struct{}

func (voice) Name() string                  { return "voice" }
func (voice) Provider() string              { return "test" }
func (voice) Address(s config.Staff) string { return s.Phone }
func (voice) Wakes() bool                   { return true }
func (voice) Send(context.Context, Message) (string, error) {
	return "", nil
}

// TestFallbackOrder: a message failing on one channel goes by the next in
// notify.fallback that reaches the person, wrapping round; a channel left
// out has none.
func TestFallbackOrder(t *testing.T) {
	alice := config.Staff{Name: "Alice", Email: "alice@example.net", Phone: "+447700900001"}
	noPhone := config.Staff{Name: "Bob", Email: "bob@example.net"}
	for _, tt := range []struct {
		name   string
		order  []string
		staff  config.Staff
		failed string
		want   string
	}{
		{"the default: SMS falls back to email", []string{"sms", "email"}, alice, "sms", "email"},
		{"the default: email falls back to SMS", []string{"sms", "email"}, alice, "email", "sms"},
		{"no phone: email has nothing to fall back to", []string{"sms", "email"}, noPhone, "email", ""},
		{"a channel left out has no fallback", []string{"email"}, alice, "sms", ""},
		{"the next in the order", []string{"voice", "sms", "email"}, alice, "voice", "sms"},
		{"wrapping round", []string{"voice", "sms", "email"}, alice, "email", "voice"},
		{"skipping what does not reach the person", []string{"voice", "sms", "email"}, noPhone, "email", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := &Notifier{cfg: &config.Config{Notify: config.Notify{Fallback: tt.order}},
				chans: []Channel{smsChannel{}, emailChannel{}, voice{}}}
			if got := n.fallbackFor(tt.staff, tt.failed); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWakingChannels: what a channel is, not its name, decides who is
// paged by it and how updates go.
func TestWakingChannels(t *testing.T) {
	n := &Notifier{chans: []Channel{smsChannel{}, emailChannel{}, voice{}}}
	r := recipient{Channels: []string{"email", "voice", "sms"}}
	if got := n.primary(r); got != "voice" {
		t.Errorf("primary %q, want the first channel that wakes", got)
	}
	if got := strings.Join(n.updateChannels(r), "+"); got != "email" {
		t.Errorf("updates by %q, want email alone", got)
	}
	r.Channels = []string{"voice", "sms"}
	if got := n.updateChannels(r); !slices.Equal(got, r.Channels) {
		t.Errorf("updates by %q, want the person's channels when none is quiet", got)
	}
}
