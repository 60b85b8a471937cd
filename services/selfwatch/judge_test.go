package selfwatch

import (
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Each case is a series of looks, each the troubles found ("lon1" a
// silent location, "-" none), and what each look publishes.
func TestJudge(t *testing.T) {
	tests := []struct {
		name                   string
		raiseAfter, clearAfter int
		looks, want            string
	}{
		{"one look is a blip", 2, 2, "lon1 - lon1 -", "- - - -"},
		{"raised after two looks, once", 2, 2, "lon1 lon1 lon1 lon1", "- raised - -"},
		{"cleared after two good looks", 2, 2, "lon1 lon1 - -", "- raised - cleared"},
		{"a good look between does not clear", 2, 2, "lon1 lon1 - lon1 - lon1", "- raised - - - -"},
		{"raised again after clearing", 1, 1, "lon1 - lon1", "raised cleared raised"},
		{"two troubles at once", 1, 1, "lon1,nyc1 nyc1", "raised+raised cleared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alerts := map[string]*alert{}
			now := time.Date(2026, 11, 21, 3, 12, 0, 0, time.UTC)
			var got []string
			for _, look := range strings.Fields(tt.looks) {
				var found []trouble
				if look != "-" {
					for _, l := range strings.Split(look, ",") {
						found = append(found, trouble{Kind: events.SelfLocation, What: l, Title: "prober " + l + " is silent"})
					}
				}
				var steps []string
				for _, p := range judge(alerts, found, now, tt.raiseAfter, tt.clearAfter) {
					ev := events.New("x", "selfwatch", now, p)
					if err := ev.Validate(); err != nil {
						t.Fatalf("invalid event: %v", err)
					}
					steps = append(steps, strings.TrimPrefix(string(p.EventType()), "self."))
				}
				if len(steps) == 0 {
					steps = []string{"-"}
				}
				got = append(got, strings.Join(steps, "+"))
				now = now.Add(30 * time.Second)
			}
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("got %q, want %q", g, tt.want)
			}
		})
	}
}

func TestAlertIDIsAToken(t *testing.T) {
	id := alertID(trouble{Kind: events.SelfDeadLetters, What: "prober@lon1 with a very long name indeed, and dots."}, time.Unix(1795227300, 0))
	if !events.ValidToken(id) {
		t.Errorf("alertID = %q, not a token", id)
	}
}

// An alert raised, cleared and raised again within one second is two
// episodes: two ids, so that the second is delivered too.
func TestAlertRaisedAgainHasANewID(t *testing.T) {
	alerts := map[string]*alert{}
	lon1 := trouble{Kind: events.SelfLocation, What: "lon1"}
	now := time.Unix(1795227300, 0)
	var ids []string
	for _, found := range [][]trouble{{lon1}, nil, {lon1}} {
		for _, p := range judge(alerts, found, now, 1, 1) {
			if r, ok := p.(*events.SelfRaised); ok {
				ids = append(ids, r.Alert)
			}
		}
		now = now.Add(200 * time.Millisecond)
	}
	if len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("raised ids %q, want two different", ids)
	}
}
