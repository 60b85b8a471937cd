package judge

import (
	"slices"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// BoxState judges a box from the states of its servers in service: it is
// available while one of them is. A suspect server is not known to be down,
// nor is one never checked, so both count as up.
func BoxState(servers map[string]events.ServerState) (state events.BoxState, up, down []string) {
	for id, s := range servers {
		if s == events.StateDown {
			down = append(down, id)
		} else {
			up = append(up, id)
		}
	}
	slices.Sort(up)
	slices.Sort(down)
	switch {
	case len(down) == 0:
		return events.BoxOperational, up, down
	case len(up) == 0:
		return events.BoxDown, up, down
	}
	return events.BoxDegraded, up, down
}
