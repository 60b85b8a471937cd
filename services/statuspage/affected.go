package statuspage

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/affected"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/fleetstate"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// AffectedHandler answers GET /api/admin/affected?name=…: whether a
// customer's site or mail is served by a box in trouble, as `tocsin
// affected` does, from what the page knows now (the last known state when
// its link to the monitoring system is down). It needs the admin token.
// Names are looked up at r, or at the system's resolver when r is nil.
func (s *Service) AffectedHandler(r *affected.Resolver) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := s.staff(req); err != nil {
			fail(w, s.log, req, err)
			return
		}
		name := req.URL.Query().Get("name")
		if strings.TrimSpace(name) == "" {
			fail(w, s.log, req, problem.Errorf(problem.Invalid, "say which host or domain: ?name=example.com"))
			return
		}
		res := r
		if res == nil {
			var err error
			if res, err = affected.SystemResolver(); err != nil {
				fail(w, s.log, req, fmt.Errorf("no resolver for the affected check: %w", err))
				return
			}
		}
		a, err := affected.Check(req.Context(), res, s.cfg, name, s.page.affectedState())
		if err != nil {
			fail(w, s.log, req, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(a)
	})
}

// affectedState is what the page knows now of the servers, the boxes and
// the incidents not yet resolved, public or not.
func (p *page) affectedState() fleetstate.State {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st := fleetstate.State{Servers: map[string]events.ServerState{}, Boxes: map[string]events.BoxState{}, AsOf: p.now()}
	for id, srv := range p.servers {
		st.Servers[id] = srv.state
	}
	for _, b := range p.boxes {
		st.Boxes[b.id] = b.state
	}
	for _, inc := range p.incidents {
		if inc.Resolved == nil && inc.Incident != "" {
			st.Incidents = append(st.Incidents, fleetstate.FromView(&inc.View, nil))
		}
	}
	slices.SortFunc(st.Incidents, func(a, b fleetstate.Incident) int { return a.Since.Compare(b.Since) })
	return st
}
