package judge

import (
	"slices"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// BoxState judges a box from the states of its servers in service: it is
// available while one of them is. A suspect server is not known to be down,
// nor is one never checked, so both count as up; a server in maintenance
// counts as neither, and a box whose servers are all in maintenance is in
// maintenance.
func BoxState(servers map[string]events.ServerState) (state events.BoxState, up, down []string) {
	maintenance := 0
	for id, s := range servers {
		switch s {
		case events.StateDown:
			down = append(down, id)
		case events.StateMaintenance:
			maintenance++
		default:
			up = append(up, id)
		}
	}
	slices.Sort(up)
	slices.Sort(down)
	switch {
	case maintenance > 0 && len(up) == 0 && len(down) == 0:
		return events.BoxMaintenance, up, down
	case len(down) == 0:
		return events.BoxOperational, up, down
	case len(up) == 0:
		return events.BoxDown, up, down
	}
	return events.BoxDegraded, up, down
}
