package statuspage

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
)

// status is the HTTP status for each kind of failure: the one place the
// page decides it.
var status = map[problem.Kind]int{
	problem.Invalid:      http.StatusBadRequest,
	problem.NotFound:     http.StatusNotFound,
	problem.Conflict:     http.StatusConflict,
	problem.Upstream:     http.StatusBadGateway,
	problem.Unauthorized: http.StatusUnauthorized,
}

// fail answers err with the status of its kind. A failure of Tocsin's
// own is logged and answered without its words, which may name internals.
func fail(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	code, ok := status[problem.KindOf(err)]
	msg := err.Error()
	if !ok {
		log.Error("an admin request failed", "path", r.URL.Path, "err", err)
		code, msg = http.StatusInternalServerError, "internal error"
	}
	http.Error(w, msg, code)
}

// staff is nil when r carries the admin token in its Authorization
// header, and an Unauthorized failure otherwise.
func (s *Service) staff(r *http.Request) error {
	token := s.cfg.Statuspage.AdminToken
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !token.IsSet() || !ok || !equalConstantTime(got, token.Reveal()) {
		return problem.Errorf(problem.Unauthorized, "unauthorized")
	}
	return nil
}
