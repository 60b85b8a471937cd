package judge

import (
	"fmt"
	"testing"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func TestBoxState(t *testing.T) {
	up, down, suspect, unknown := events.StateUp, events.StateDown, events.StateSuspect, events.StateUnknown
	tests := []struct {
		servers map[string]events.ServerState
		want    events.BoxState
	}{
		{map[string]events.ServerState{"a": up, "b": up}, events.BoxOperational},
		{map[string]events.ServerState{"a": down, "b": up}, events.BoxDegraded},
		{map[string]events.ServerState{"a": down, "b": down}, events.BoxDown},
		{map[string]events.ServerState{"a": down, "b": suspect}, events.BoxDegraded},
		{map[string]events.ServerState{"a": unknown, "b": unknown}, events.BoxOperational},
		{map[string]events.ServerState{"a": down}, events.BoxDown},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.servers), func(t *testing.T) {
			if got, _, _ := BoxState(tt.servers); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	_, gotUp, gotDown := BoxState(map[string]events.ServerState{"b": up, "a": down, "c": up})
	if fmt.Sprint(gotUp, gotDown) != "[b c] [a]" {
		t.Errorf("up %v, down %v", gotUp, gotDown)
	}
}

func TestBoxInMaintenance(t *testing.T) {
	m, up := events.StateMaintenance, events.StateUp
	if got, _, _ := BoxState(map[string]events.ServerState{"a": m, "b": m}); got != events.BoxMaintenance {
		t.Errorf("all in maintenance: %s", got)
	}
	if got, _, _ := BoxState(map[string]events.ServerState{"a": m, "b": up}); got != events.BoxOperational {
		t.Errorf("one in maintenance, one up: %s", got)
	}
	if got, _, _ := BoxState(map[string]events.ServerState{"a": m, "b": events.StateDown}); got != events.BoxDown {
		t.Errorf("one in maintenance, one down: %s", got)
	}
}
