package push

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// What one client may ask of the push endpoint. A job reports once a run,
// a few a minute at the most with retries; beyond that a client is
// guessing tokens.
const (
	reportRate, reportBurst = 1, 20 // a second, at once
	guardClients            = 10000 // remembered at once
	// MaxBody bounds what a report may carry: a failure message is cut
	// to events.MaxPushMessage, and anything longer is refused.
	MaxBody = 4 << 10
)

// Request is a call to the push endpoint as it was parsed: the token, and
// whether the job says it failed, with its message.
type Request struct {
	Token   string
	Fail    bool
	Message string
}

// errNotFound is every path that is not a report with a well-formed
// token: one answer, so that nothing tells a guess from a near miss.
var errNotFound = errors.New("not found")

// Parse reads a call: GET or POST /push/<token> or /push/<token>/fail,
// with at most MaxBody bytes of body, the failure's message. It never
// reads more than MaxBody+1 bytes.
func Parse(method, path string, body io.Reader) (Request, error) {
	if method != http.MethodGet && method != http.MethodPost && method != http.MethodHead {
		return Request{}, errMethod
	}
	rest, ok := strings.CutPrefix(path, "/push/")
	if !ok {
		return Request{}, errNotFound
	}
	var r Request
	if tok, ok := strings.CutSuffix(rest, "/fail"); ok {
		r.Fail, rest = true, tok
	}
	if !config.ValidPushToken(rest) {
		return Request{}, errNotFound
	}
	r.Token = rest
	if body != nil && r.Fail {
		b, err := io.ReadAll(io.LimitReader(body, MaxBody+1))
		if err != nil {
			return Request{}, fmt.Errorf("read the message: %w", err)
		}
		if len(b) > MaxBody {
			return Request{}, errTooLarge
		}
		r.Message = Clean(string(b))
	}
	return r, nil
}

var (
	errMethod   = errors.New("use GET or POST")
	errTooLarge = fmt.Errorf("a message of at most %d bytes", MaxBody)
)

// Clean makes a job's message fit to read in an SMS and an email: valid
// UTF-8, one line, no control characters, spaces collapsed, cut to
// events.MaxPushMessage less room for what the reason says around it.
func Clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	return events.Clip(strings.Join(strings.Fields(s), " "), events.MaxPushMessage-len(failPrefix))
}

// failPrefix starts the reason of a failure report.
const failPrefix = "the job reported failure"

// serve answers reports until ctx ends.
func (s *Service) serve(ctx context.Context, kv jetstream.KeyValue) error {
	ln := s.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Push.Listen); err != nil {
			return fmt.Errorf("push: listen on %s: %w", s.cfg.Push.Listen, err)
		}
	}
	srv := httpguard.Server(s.Handler(kv), httpguard.Limits{ReadTimeout: 15 * time.Second, WriteTimeout: 15 * time.Second, MaxHeaderBytes: 8 << 10}, s.log)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	s.log.Info("taking push reports", "listen", ln.Addr().String(), "servers", len(s.list))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler is the push endpoint, limited per client.
func (s *Service) Handler(kv jetstream.KeyValue) http.Handler {
	proxies := httpguard.Proxies(s.cfg.Push.Proxies)
	limit := httpguard.NewLimiter(reportRate, reportBurst, guardClients, proxies, s.now)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if ok, wait := limit.Allow(httpguard.Key(proxies.Client(r))); !ok {
			s.m.PushReport(metrics.PushRejected)
			httpguard.TooMany(w, wait, "too many requests; try again later")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody+1)
		req, err := Parse(r.Method, r.URL.EscapedPath(), r.Body)
		switch {
		case errors.Is(err, errNotFound):
			s.m.PushReport(metrics.PushUnknownToken)
			http.NotFound(w, r)
			return
		case errors.Is(err, errMethod):
			s.m.PushReport(metrics.PushRejected)
			w.Header().Set("Allow", "GET, POST")
			http.Error(w, err.Error(), http.StatusMethodNotAllowed)
			return
		case err != nil:
			s.m.PushReport(metrics.PushRejected)
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		j, ok := s.jobs[sha256.Sum256([]byte(req.Token))]
		if !ok {
			s.m.PushReport(metrics.PushUnknownToken)
			http.NotFound(w, r)
			return
		}
		outcome, reason, result := events.PushOK, "", metrics.PushOK
		if req.Fail {
			outcome, reason, result = events.PushFailed, failPrefix, metrics.PushFailed
			if msg := strings.ReplaceAll(req.Message, j.token, "[token]"); msg != "" {
				reason += ": " + msg
			}
		}
		if err := s.report(r.Context(), kv, j, outcome, reason); err != nil {
			s.log.Warn("could not record a push report; the job should try again", "server", j.server, "err", err)
			http.Error(w, "not recorded; try again", http.StatusServiceUnavailable)
			return
		}
		s.m.PushReport(result)
		s.log.Info("push report", "server", j.server, "outcome", outcome)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
}

func jsonTime(t time.Time) ([]byte, error) { return json.Marshal(t.UTC()) }
