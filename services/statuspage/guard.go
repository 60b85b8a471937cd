package statuspage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
)

// What the page lets one client spend. The admin API is for staff and
// their scripts: a few calls a second is plenty, and it bounds how fast
// anyone can guess the token.
const (
	adminRate    = 2 // requests a second, on average
	adminBurst   = 20
	adminClients = 10000 // remembered at once
	// eventWriteTimeout is how long one event may take to reach a client:
	// a stream has no overall write timeout, but a client that stops
	// reading is cut off at its next event.
	eventWriteTimeout = 10 * time.Second
	// streamRetryAfter is when a client refused a stream may try again.
	streamRetryAfter = 30 * time.Second
)

//go:embed page.css
var pageCSS string

//go:embed page.js
var pageJS string

var colourRE = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// styleOf is the page's inline style sheet: the fixed rules and the
// colours of the config's roles. It is built once, so that the policy can
// allow it by its hash, and no style attribute is needed on any element:
// the policy allows no inline style but this one.
func styleOf(boxes []*box, roles []roleView) string {
	var b strings.Builder
	b.WriteString(pageCSS)
	for _, bx := range boxes {
		fmt.Fprintf(&b, "#c-%s { --role: %s; }\n", bx.component, safeColour(bx.colour))
	}
	for _, r := range roles {
		fmt.Fprintf(&b, ".swatch.%s { background: %s; }\n", r.Class, safeColour(r.Colour))
	}
	return b.String()
}

// safeColour is c if it is a colour and nothing else: it goes into the
// style sheet as it is.
func safeColour(c string) string {
	if colourRE.MatchString(c) {
		return c
	}
	return "#5d6d7e"
}

// pagePolicy is the page's Content-Security-Policy: its own script file and
// its one style sheet, the live updates from its own origin, nothing from
// anywhere else, and no framing.
func pagePolicy(style string) string {
	return "default-src 'none'; script-src 'self'; style-src " + httpguard.Hash(style) +
		"; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// exportPolicy is the policy a static copy carries in a meta element, for
// a host that sends none: no script at all (the copy has none), and
// frame-ancestors left out, which a meta element cannot carry.
func exportPolicy(style string) string {
	return "default-src 'none'; style-src " + httpguard.Hash(style) + "; img-src 'self'; base-uri 'none'; form-action 'none'"
}

// basePolicy is for everything but the page: documents to read, not to
// run, and never to frame. It does not touch CORS: the API, the feed and
// the banner stay readable from any origin.
const basePolicy = "default-src 'none'; frame-ancestors 'none'"

// secured sets the headers every answer carries; the page sets its own
// policy over them.
func secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", basePolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (s *Service) servePageJS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	fmt.Fprint(w, pageJS)
}

// publicID is the id the public know a thing by: a keyed hash of its own
// id. An incident's id ends in the code that acknowledges it by SMS, and
// an unkeyed hash of so short an id is undone by trying every code.
func (p *page) publicID(kind, id string) string {
	mac := hmac.New(sha256.New, p.idKey)
	fmt.Fprintf(mac, "%s:%s", kind, id)
	return strings.ToLower(base32.StdEncoding.EncodeToString(mac.Sum(nil)))[:12]
}

// incidentByPublicID finds the incident the public know by id; call with
// mu held.
func (p *page) incidentByPublicID(id string) (string, bool) {
	for internal := range p.incidents {
		if hmac.Equal([]byte(p.publicID("incident", internal)), []byte(id)) {
			return internal, true
		}
	}
	return "", false
}

// idKeyFile is where a page keeps the key of its public ids when the
// config gives none: beside its saved state, so that the ids outlast a
// restart.
func idKeyFile(stateFile string) string {
	return filepath.Join(filepath.Dir(stateFile), "statuspage-id.key")
}

// loadIDKey reads the key kept in file, or makes one and keeps it there.
func loadIDKey(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("%s: not a key of public incident ids; remove it to make a new one", file)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read the key of public incident ids: %w", err)
	}
	key := randomKey()
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return nil, fmt.Errorf("keep the key of public incident ids: %w", err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadIDKey(file) // another page made it meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("keep the key of public incident ids: %w", err)
	}
	_, werr := fmt.Fprintln(f, hex.EncodeToString(key))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(file)
		return nil, fmt.Errorf("keep the key of public incident ids: %w", err)
	}
	return key, nil
}

func randomKey() []byte {
	key := make([]byte, 32)
	rand.Read(key) // never fails: see crypto/rand
	return key
}

// styleCSS marks the style sheet as the page's own for the template: it is
// built from fixed rules and colours checked to be colours.
func styleCSS(style string) template.CSS { return template.CSS(style) }
