package statuspage

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
)

// TestFailStatus: each kind of failure gets its status, and a failure of
// Tocsin's own never shows its words to the caller.
func TestFailStatus(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	tests := []struct {
		err      error
		code     int
		body     string
		notInLog bool
	}{
		{problem.Errorf(problem.Invalid, "%q is not a host or domain name", "a b"), http.StatusBadRequest, `"a b" is not a host`, true},
		{errors.Join(errors.New("posting"), problem.Errorf(problem.NotFound, "no incident x")), http.StatusNotFound, "no incident x", true},
		{problem.Errorf(problem.Conflict, "too many updates at once; try again"), http.StatusConflict, "try again", true},
		{problem.Errorf(problem.Upstream, "look up example.com: %w", io.ErrUnexpectedEOF), http.StatusBadGateway, "look up example.com", true},
		{problem.Errorf(problem.Unauthorized, "unauthorized"), http.StatusUnauthorized, "unauthorized", true},
		{errors.New("nats: connection closed to 10.0.0.7:4222"), http.StatusInternalServerError, "internal error", false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			logged.Reset()
			w := httptest.NewRecorder()
			fail(w, log, httptest.NewRequest("POST", "/api/admin/incidents/x/updates", nil), tt.err)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("got %d %q, want %d with %q", w.Code, w.Body.String(), tt.code, tt.body)
			}
			if strings.Contains(w.Body.String(), "10.0.0.7") {
				t.Errorf("the caller reads an internal address: %q", w.Body.String())
			}
			if logged.Len() > 0 == tt.notInLog {
				t.Errorf("logged %q", logged.String())
			}
		})
	}
}
