package statuspage

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzSavedState: whatever the saved state holds (a truncated write, a file
// from another version, one tampered with on disk), loading it is refused
// or taken in, and the page, its API and its feed are still served.
func FuzzSavedState(f *testing.F) {
	t0 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC).Format(time.RFC3339)
	for _, seed := range []string{
		`{"format":1}`,
		`{"format":1,"servers":{"mx1":{"state":"down","since":"` + t0 + `"}},"boxes":{"mx":{"state":"down","since":"` + t0 + `","history":[{"at":"` + t0 + `","from":"operational","state":"down"}]}}}`,
		`{"format":1,"incidents":[{"incident":"i1","title":"x","opened":"` + t0 + `","boxes":["mx","nope"],"box_states":{"mx":{"box":"mx","state":"down"}},"public":true}]}`,
		`{"format":1,"maintenance":{"m":{"maintenance":"m","servers":["mx1"],"from":"` + t0 + `","until":"` + t0 + `","public":true,"boxes":["mx"]}},"banner":{"on":true,"message":"<script>x</script>"}}`,
		`{"format":99}`, `{`, ``, `null`, `[]`,
	} {
		f.Add([]byte(seed))
	}
	cfg := siteConfig(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(t.TempDir(), "statuspage.json")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s := New(cfg, Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		_ = s.loadState(file) // refused or taken in; either way the page serves
		h := s.Handler()
		for _, path := range []string{"/", "/api/v2/summary.json", "/api/v2/incidents.json", "/feed.atom", "/banner.json"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code >= 500 {
				t.Errorf("%s answered %d after loading %q", path, rec.Code, data)
			}
		}
	})
}
