package statuspage

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Export writes the page as static files into dir, for any static host: the
// HTML (without its live-update script), every API document, the Atom feed,
// and the banner script with its state. It follows the state for settle
// first, long enough to read what the buckets and the stream hold.
func (s *Service) Export(ctx context.Context, dir string, settle time.Duration) error {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.follow(fctx) }()
	select {
	case <-time.After(settle):
	case err := <-done:
		cancel()
		return err
	case <-ctx.Done():
		cancel()
		return ctx.Err()
	}
	cancel()
	<-done

	s.page.mu.RLock()
	v := s.page.view(s.now())
	s.page.mu.RUnlock()
	v.StaticExport, v.Live = true, true // a static copy says when it was made, not that a link is lost
	var html bytes.Buffer
	if err := tmpl.Execute(&html, v); err != nil {
		return fmt.Errorf("render the page: %w", err)
	}
	files := map[string][]byte{"index.html": html.Bytes()}
	h := s.Handler()
	for _, path := range []string{
		"/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json", "/api/v2/incidents.json",
		"/api/v2/incidents/unresolved.json", "/api/v2/scheduled-maintenances.json",
		"/api/v2/scheduled-maintenances/upcoming.json", "/api/v2/scheduled-maintenances/active.json",
		"/feed.atom", "/banner.js", "/banner.json",
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://localhost"+path, nil)
		if err != nil {
			return err
		}
		req.RemoteAddr = "127.0.0.1:0"
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, req)
		if rec.code != http.StatusOK {
			return fmt.Errorf("render %s: %d", path, rec.code)
		}
		files[path[1:]] = rec.body.Bytes()
	}
	for name, data := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	s.log.Info("status page exported", "dir", dir, "files", len(files))
	return nil
}

// recorder keeps what a handler wrote, for the export to save.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
