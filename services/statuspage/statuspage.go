// Package statuspage is the public face of Tocsin: a server-rendered page
// that works without JavaScript and updates itself over Server-Sent Events,
// the Statuspage v2 public API with its field names and status values, an
// Atom feed of incidents, and the banner script the hosting web pages
// include.
//
// It reads what the other services keep (the server, box, maintenance and
// banner buckets) and announce (incident and box events), so it can run
// alone on another network against the cluster, or a leaf node of it. When
// its link is gone it keeps serving the last state it knew, and says since
// when. It shows only what the public may see: boxes, their roles, servers
// by their public names, incidents during which a box was down.
package statuspage

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform"
	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
	"github.com/tocsin-alarm/tocsin/internal/platform/problem"
	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Deps are what the page needs from outside, as every service.
type Deps = platform.Deps

// Option adjusts the page.
type Option func(*Service)

// WithNotes posts staff updates on b: on a cluster, a user that may post
// them, while the page's own only reads.
func WithNotes(b *bus.Bus) Option { return func(s *Service) { s.notes = b } }

// WithListener serves the page on ln instead of statuspage.listen.
func WithListener(ln net.Listener) Option { return func(s *Service) { s.ln = ln } }

// WithStateFile keeps the page's last known state in file, to serve it
// after a restart while the monitoring system is out of reach.
func WithStateFile(file string) Option { return func(s *Service) { s.stateFile = file } }

// Service serves the status page.
type Service struct {
	cfg   *config.Config
	bus   *bus.Bus
	notes *bus.Bus // where staff updates are posted, if not bus
	log   *slog.Logger
	now   func() time.Time
	ln    net.Listener
	page  *page
	m     *metrics.Metrics

	stateFile string
	stale     *staleAlert // nil: no stale alert

	// What bounds each client: the connection, its live-update streams,
	// its calls to the admin API.
	limits     httpguard.Limits
	eventWrite time.Duration
	proxies    httpguard.Proxies
	streams    *httpguard.Streams
	admin      *httpguard.Limiter
}

// New returns the status page for cfg.
func New(cfg *config.Config, deps Deps, opts ...Option) *Service {
	deps = deps.WithDefaults()
	deps.Metrics.Expect("statuspage") // no durable consumer: ready once following
	sp := cfg.Statuspage
	s := &Service{
		m: deps.Metrics, cfg: cfg, bus: deps.Bus, log: deps.Log.With("service", "statuspage"), now: deps.Now,
		page:   newPage(cfg, deps.Now),
		limits: httpguard.DefaultLimits(), eventWrite: eventWriteTimeout, proxies: sp.Proxies,
		streams: httpguard.NewStreams(sp.MaxStreams, sp.MaxStreamsPerClient),
		admin:   httpguard.NewLimiter(adminRate, adminBurst, adminClients, sp.Proxies, nil),
	}
	for _, o := range opts {
		o(s)
	}
	s.stale = s.newStaleAlert(cfg)
	switch {
	case sp.IDKey.IsSet():
		s.page.idKey = []byte(sp.IDKey.Reveal())
	case s.stateFile != "":
		key, err := loadIDKey(idKeyFile(s.stateFile))
		if err != nil {
			s.log.Error("public incident ids will change at every restart; set statuspage.id_key_env or id_key_file", "err", err)
			break
		}
		s.page.idKey = key
	default:
		s.log.Info("public incident ids are this process's own; set statuspage.id_key_env or id_key_file for ids that outlast it")
	}
	return s
}

// Run follows the state and serves the page until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	ln := s.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.Statuspage.Listen); err != nil {
			return fmt.Errorf("statuspage: listen on %s: %w", s.cfg.Statuspage.Listen, err)
		}
	}
	srv := httpguard.Server(s.Handler(), s.limits, s.log)
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var saving sync.WaitGroup
	defer saving.Wait() // the last save, after cancel
	if s.stateFile != "" {
		if err := s.loadState(s.stateFile); err != nil {
			s.log.Warn("starting without the saved state", "err", err)
		}
		saving.Go(func() { s.keepSaving(ctx, s.stateFile, 2*time.Second) })
	}
	if s.stale != nil {
		saving.Go(func() { s.watchStale(ctx) })
	}
	// Both parts end before Run returns: a page that stops has stopped
	// reading the bus and answering, not half of it.
	var parts sync.WaitGroup
	parts.Go(func() { errs <- s.keepFollowing(ctx) })
	parts.Go(func() {
		s.log.Info("status page serving", "listen", ln.Addr().String())
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
			return
		}
		errs <- nil
	})
	var err error
	select {
	case err = <-errs:
	case <-ctx.Done():
	}
	cancel()
	shutdown(srv)
	parts.Wait()
	return err
}

func shutdown(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

// Handler is everything the page serves.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.servePage)
	mux.HandleFunc("GET /page.js", s.servePageJS)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /feed.atom", s.serveAtom)
	mux.HandleFunc("GET /banner.js", s.serveBannerJS)
	mux.HandleFunc("GET /banner.json", s.serveBannerJSON)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("POST /api/admin/incidents/{id}/updates", s.admin.Wrap(http.HandlerFunc(s.postUpdate)))
	mux.Handle("GET /api/admin/affected", s.admin.Wrap(s.AffectedHandler(nil)))
	s.routesAPI(mux)
	return secured(mux)
}

// keepFollowing follows the state until ctx ends, setting the following
// up again whenever it fails: off-site, the monitoring system may be out of
// reach for hours, and the page must outlast that and catch up after.
func (s *Service) keepFollowing(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.page.setLive(false)
		wait := min(time.Second<<min(attempt, 5), 30*time.Second)
		s.log.Warn("cannot follow the monitoring system's state; serving the last known and retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// follow keeps the page's state current until ctx ends, and keeps track of
// whether the link to the monitoring system is up.
func (s *Service) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx) // stops the watches when following fails
	defer cancel()
	watch := map[string]func(jetstream.KeyValueEntry){
		events.BucketServers:     s.serverEntry,
		events.BucketBoxes:       s.boxEntry,
		events.BucketMaintenance: s.maintenanceEntry,
		events.BucketBanner:      s.bannerEntry,
	}
	for bucket, apply := range watch {
		kv, err := s.bus.KV(ctx, bucket)
		if err != nil {
			return err
		}
		w, err := kv.WatchAll(ctx)
		if err != nil {
			return fmt.Errorf("watch %s: %w", bucket, err)
		}
		go func() {
			defer w.Stop()
			for e := range w.Updates() {
				if e != nil {
					apply(e)
				}
			}
		}()
	}
	c, err := s.bus.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectIncidents, events.SubjectBoxChanges},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   ptr(s.now().Add(-s.cfg.Statuspage.History.D())),
	})
	if err != nil {
		return fmt.Errorf("follow incidents: %w", err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		ev, err := events.Decode(m.Subject(), m.Data())
		if err != nil {
			return // the verifier sets malformed events aside; the page just skips them
		}
		if bc, ok := ev.Data.(*events.BoxStateChanged); ok {
			s.page.boxChanged(bc)
			return
		}
		s.page.incidentEvent(ev)
	})
	if err != nil {
		return fmt.Errorf("follow incidents: %w", err)
	}
	defer cc.Stop()
	s.m.Started("statuspage")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.page.setLive(s.bus.NC.IsConnected())
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ptr[T any](v T) *T { return &v }

func (s *Service) serverEntry(e jetstream.KeyValueEntry) {
	var r events.ServerRecord
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &r) != nil || !r.State.Valid() {
		return
	}
	since := r.Since
	if (r.State == events.StateUp || r.State == events.StateSuspect) && !r.UpSince.IsZero() {
		since = r.UpSince // online since then, whatever blips another location saw
	}
	s.page.setServer(e.Key(), r.State, since)
}

func (s *Service) boxEntry(e jetstream.KeyValueEntry) {
	var r events.BoxRecord
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &r) != nil || !r.State.Valid() {
		return
	}
	s.page.setBox(e.Key(), r.State, r.Since)
}

func (s *Service) maintenanceEntry(e jetstream.KeyValueEntry) {
	var w events.MaintenanceSet
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &w) != nil {
		s.page.setMaintenance(e.Key(), nil)
		return
	}
	s.page.setMaintenance(e.Key(), &w)
}

func (s *Service) bannerEntry(e jetstream.KeyValueEntry) {
	var b events.Banner
	if e.Key() != events.BannerKey || e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &b) != nil {
		return
	}
	s.page.setBanner(b)
}

// postUpdate is the admin API's one call: staff post an update to an
// incident, as `tocsin incident update` does. It needs the admin token;
// what it says is scrubbed when it is shown, not here, so that staff and
// the datacentre read it whole.
func (s *Service) postUpdate(w http.ResponseWriter, r *http.Request) {
	if err := s.staff(r); err != nil {
		fail(w, s.log, r, err)
		return
	}
	var in struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		By      string `json:"by"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		fail(w, s.log, r, problem.Errorf(problem.Invalid, "the body must be JSON: {\"status\": …, \"message\": …, \"by\": …}"))
		return
	}
	if in.By == "" {
		in.By = "staff"
	}
	// Staff may name the incident as the page does, or by its own id.
	id := r.PathValue("id")
	s.page.mu.RLock()
	if internal, ok := s.page.incidentByPublicID(id); ok {
		id = internal
	}
	s.page.mu.RUnlock()
	poster := s.bus
	if s.notes != nil {
		poster = s.notes
	}
	n, err := incident.PostNote(r.Context(), poster, id, in.Status, in.Message, in.By, s.now())
	if err != nil {
		fail(w, s.log, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(n)
}

func equalConstantTime(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
