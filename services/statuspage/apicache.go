package statuspage

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// docMaxAge is how long an encoded document serves without a change of the
// page: the documents also follow the clock alone (a maintenance window
// going from scheduled to in progress).
const docMaxAge = time.Second

// encodedDoc is one API document, encoded once and served to every request
// until the page changes. Status pages are read far more often than they
// change, and most during an outage, when widgets everywhere poll them:
// building summary.json for a fleet of a thousand servers costs
// milliseconds of CPU, serving it from here microseconds.
type encodedDoc struct {
	build func(now time.Time) any

	mu      sync.Mutex // one build at a time; requests meanwhile wait for it
	version uint64
	built   time.Time
	body    []byte
	gz      []byte // compressed on first demand
	etag    string
}

// current returns the document as of now, building it again if the page
// changed or it is older than docMaxAge.
func (d *encodedDoc) current(p *page, now time.Time) (*encodedDoc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.body != nil && d.version == p.version.Load() && now.Sub(d.built) < docMaxAge && !now.Before(d.built) {
		return d, nil
	}
	p.mu.RLock()
	version := p.version.Load()
	doc := d.build(now)
	p.mu.RUnlock()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(doc); err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write(buf.Bytes())
	d.version, d.built, d.body, d.gz = version, now, buf.Bytes(), nil
	d.etag = `"` + strconv.FormatUint(h.Sum64(), 36) + `"`
	return d, nil
}

// gzipped is the body compressed; call with mu held.
func (d *encodedDoc) gzipped() []byte {
	if d.gz == nil {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		zw.Write(d.body)
		zw.Close()
		d.gz = buf.Bytes()
	}
	return d.gz
}

// apiHandler serves one of the API's documents, readable from any origin,
// gzipped for clients that accept it, with an ETag so that a poller that
// has it already gets 304.
func (s *Service) apiHandler(build func(now time.Time) any) http.HandlerFunc {
	d := &encodedDoc{build: build}
	return func(w http.ResponseWriter, r *http.Request) {
		doc, err := d.current(s.page, s.now())
		if err != nil {
			s.log.Error("encoding an API document", "path", r.URL.Path, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		// A build replaces the buffers, never changes them: what is taken
		// here stays whole while it is written.
		doc.mu.Lock()
		body, etag := doc.body, doc.etag
		gz := acceptsGzip(r)
		if gz {
			body, etag = doc.gzipped(), strings.TrimSuffix(etag, `"`)+`-gz"`
		}
		doc.mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Cache-Control", "public, max-age=10")
		h.Set("Vary", "Accept-Encoding")
		h.Set("ETag", etag)
		if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if gz {
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", fmt.Sprint(len(body)))
		_, _ = w.Write(body)
	}
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (and does not refuse it with q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
