// Package metrics holds the Prometheus metrics of one Tocsin process: what
// an on-call engineer graphs and alerts on, on a registry that belongs to
// the process rather than the global default, so that two processes in one
// test, or two services in one process, never trip over each other. It also
// keeps track of which services of the process are ready, since readiness
// is read the same way the metrics are: on demand, by the admin server.
package metrics

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// scrapeTimeout bounds each question a scrape asks JetStream: a slow or
// absent server makes the gauge missing from that scrape, never a scrape
// that hangs.
const scrapeTimeout = 2 * time.Second

// Metrics are one process's metrics. All methods are safe for concurrent
// use, and safe on a nil *Metrics, where they do nothing: a part of Tocsin
// used outside a service (a command, a test) need not make one.
type Metrics struct {
	reg *prometheus.Registry

	checks        *prometheus.CounterVec
	checkFailures *prometheus.CounterVec
	checkHung     *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec

	verifications *prometheus.CounterVec
	falseAlarms   prometheus.Counter
	incidents     *prometheus.CounterVec

	notifications   *prometheus.CounterVec
	providerLatency *prometheus.HistogramVec
	failover        *prometheus.CounterVec

	messages *prometheus.CounterVec

	domainLookups *prometheus.CounterVec
	domainExpiry  *prometheus.GaugeVec

	pushReports *prometheus.CounterVec

	mu        sync.Mutex
	consumers map[consumerKey]*consumerState
	units     map[string]*unit
	openFn    func(context.Context) (int, error)
}

type consumerKey struct{ stream, name string }

type consumerState struct {
	cons jetstream.Consumer // nil while it is not set up
	up   bool
	pin  string // an exclusive consumer's pin id on this instance's messages; empty until one came
}

// unit is one service instance of the process (a prober per location) and
// the consumers it needs before it is ready.
type unit struct {
	consumers []string
	started   bool
}

// New returns metrics on a registry of their own, with the Go runtime's and
// the process's collectors beside them.
func New() *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		consumers: map[consumerKey]*consumerState{},
		units:     map[string]*unit{},
	}
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_checks_total", Help: "Checks run by probers, by location and the role of the box checked.",
	}, []string{"location", "role"})
	m.checkFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_check_failures_total", Help: "Checks that failed, by location, role and class of reason (timeout, refused, tls, …).",
	}, []string{"location", "role", "reason"})
	m.checkHung = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_checks_unanswered_total", Help: "Checks still waiting for their answer after hang_after, so that other locations were asked at once, by location and role.",
	}, []string{"location", "role"})
	m.checkDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tocsin_check_duration_seconds", Help: "How long checks took, by location.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"location"})
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_verifications_total", Help: "Verifications of a failure from other locations, started and confirmed.",
	}, []string{"stage"})
	m.falseAlarms = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tocsin_false_alarms_total", Help: "Failures that other locations did not confirm: nobody was told.",
	})
	m.incidents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_incidents_total", Help: "Incidents opened and resolved by this process.",
	}, []string{"event"})
	m.notifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_notifications_total", Help: "Messages to staff by channel (sms, email) and outcome (sent, retried, failed, fallback).",
	}, []string{"channel", "outcome"})
	m.providerLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tocsin_provider_request_duration_seconds", Help: "How long requests to providers took, failed ones included.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"provider"})
	m.failover = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_failover_actions_total", Help: "Failover actions by kind (remove, restore) and outcome.",
	}, []string{"action", "outcome"})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_messages_total", Help: "Bus messages by consumer and result: handled, failed (retried later), dead_lettered.",
	}, []string{"consumer", "result"})
	m.domainLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_domain_lookups_total", Help: "Lookups of a domain's expiry at its registry by RDAP, by result: ok, failed (tried again next round), not_found (the registry does not know the domain).",
	}, []string{"result"})
	m.domainExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tocsin_domain_expiry_timestamp_seconds", Help: "When each watched domain's registration expires, as its registry last said.",
	}, []string{"domain"})
	m.pushReports = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tocsin_push_reports_total", Help: "Calls to the push endpoint and deadlines it saw pass, by result: ok, failed (the job said so), missed (no report in time), unknown_token (404: a wrong or guessed token), rejected (a bad request, or too many from one client).",
	}, []string{"result"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.checks, m.checkFailures, m.checkHung, m.checkDuration, m.verifications, m.falseAlarms, m.incidents,
		m.notifications, m.providerLatency, m.failover, m.messages, m.domainLookups, m.domainExpiry, m.pushReports,
		scrapeCollector{m},
	)
	return m
}

// Registry is where the metrics are registered, to serve them.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// CheckRan counts a check run at location on a server of a box with role;
// reason is the failure's class, empty when the check passed.
func (m *Metrics) CheckRan(location, role, reason string, took time.Duration) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(location, role).Inc()
	m.checkDuration.WithLabelValues(location).Observe(took.Seconds())
	if reason != "" {
		m.checkFailures.WithLabelValues(location, role, reason).Inc()
	}
}

// CheckUnanswered counts a check at location still waiting for its
// answer after hang_after.
func (m *Metrics) CheckUnanswered(location, role string) {
	if m != nil {
		m.checkHung.WithLabelValues(location, role).Inc()
	}
}

// VerificationStarted counts a failure sent to other locations to confirm.
func (m *Metrics) VerificationStarted() {
	if m != nil {
		m.verifications.WithLabelValues("started").Inc()
	}
}

// VerificationConfirmed counts a failure the other locations confirmed.
func (m *Metrics) VerificationConfirmed() {
	if m != nil {
		m.verifications.WithLabelValues("confirmed").Inc()
	}
}

// FalseAlarm counts a failure the other locations did not confirm.
func (m *Metrics) FalseAlarm() {
	if m != nil {
		m.falseAlarms.Inc()
	}
}

// IncidentOpened counts an incident opened.
func (m *Metrics) IncidentOpened() {
	if m != nil {
		m.incidents.WithLabelValues("opened").Inc()
	}
}

// IncidentResolved counts an incident resolved.
func (m *Metrics) IncidentResolved() {
	if m != nil {
		m.incidents.WithLabelValues("resolved").Inc()
	}
}

// The outcomes of a notification.
const (
	Sent     = "sent"
	Retried  = "retried"
	Failed   = "failed"
	Fallback = "fallback"
	// Grouped: an SMS not sent because its person was paged about another
	// incident of the same storm moments before.
	Grouped = "grouped"
)

// Notification counts a message to staff over channel with an outcome.
func (m *Metrics) Notification(channel, outcome string) {
	if m != nil {
		m.notifications.WithLabelValues(channel, outcome).Inc()
	}
}

// ProviderRequest records how long one request to provider took, from
// start; use it as `defer m.ProviderRequest("twilio", time.Now())`.
func (m *Metrics) ProviderRequest(provider string, start time.Time) {
	if m != nil {
		m.providerLatency.WithLabelValues(provider).Observe(time.Since(start).Seconds())
	}
}

// FailoverAction counts a failover action of kind (remove, restore) with
// its outcome.
func (m *Metrics) FailoverAction(kind, outcome string) {
	if m != nil {
		m.failover.WithLabelValues(kind, outcome).Inc()
	}
}

// The results of one bus message.
const (
	Handled      = "handled"
	Retry        = "failed"
	DeadLettered = "dead_lettered"
)

// Message counts one bus message taken by consumer, with its result.
func (m *Metrics) Message(consumer, result string) {
	if m != nil {
		m.messages.WithLabelValues(consumer, result).Inc()
	}
}

// The results of a domain lookup.
const (
	LookupOK       = "ok"
	LookupFailed   = "failed"
	LookupNotFound = "not_found"
)

// DomainLookup counts one lookup of a domain's expiry, with its result.
func (m *Metrics) DomainLookup(result string) {
	if m != nil {
		m.domainLookups.WithLabelValues(result).Inc()
	}
}

// DomainExpiry records when a domain expires, as its registry said.
func (m *Metrics) DomainExpiry(domain string, at time.Time) {
	if m != nil {
		m.domainExpiry.WithLabelValues(domain).Set(float64(at.Unix()))
	}
}

// The results of a call to the push endpoint, or of a deadline passing.
const (
	PushOK           = "ok"
	PushFailed       = "failed"
	PushMissed       = "missed"
	PushUnknownToken = "unknown_token"
	PushRejected     = "rejected"
)

// PushReport counts one call to the push endpoint, or one deadline
// missed, by its result.
func (m *Metrics) PushReport(result string) {
	if m != nil {
		m.pushReports.WithLabelValues(result).Inc()
	}
}

// OpenIncidents sets how the number of incidents open is counted at each
// scrape: the count lives in JetStream, shared by every verifier, so no
// process's own tally of opened and resolved can be trusted for it.
func (m *Metrics) OpenIncidents(count func(context.Context) (int, error)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.openFn = count
}

// scrapeCollector reports, at each scrape, what must be asked for then:
// each consumer's lag, the incidents open, and readiness.
type scrapeCollector struct{ m *Metrics }

var (
	descPending = prometheus.NewDesc("tocsin_consumer_pending_messages",
		"Messages in the stream that this process's consumer has not yet been given (JetStream's NumPending).",
		[]string{"stream", "consumer"}, nil)
	descAckPending = prometheus.NewDesc("tocsin_consumer_ack_pending_messages",
		"Messages given to this process's consumer and not yet acknowledged (JetStream's NumAckPending).",
		[]string{"stream", "consumer"}, nil)
	descOpen = prometheus.NewDesc("tocsin_incidents_open",
		"Incidents open now, across every verifier.", nil, nil)
	descReady = prometheus.NewDesc("tocsin_service_ready",
		"1 when the service instance of this process has set up its consumers.", []string{"service"}, nil)
)

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descAckPending
	ch <- descOpen
	ch <- descReady
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	m.mu.Lock()
	type one struct {
		key  consumerKey
		cons jetstream.Consumer
	}
	var cons []one
	for k, s := range m.consumers {
		cons = append(cons, one{k, s.cons})
	}
	openFn := m.openFn
	ready := map[string]bool{}
	for s := range m.units {
		ready[s], _ = m.readyLocked(s)
	}
	m.mu.Unlock()

	for s, ok := range ready {
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, v, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	// Consumers are asked at once, so that one slow answer does not use up
	// the others' time.
	var wg sync.WaitGroup
	for _, o := range cons {
		wg.Go(func() {
			info, err := o.cons.Info(ctx)
			if err != nil {
				return // absent from this scrape
			}
			ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(info.NumPending), o.key.stream, o.key.name)
			ch <- prometheus.MustNewConstMetric(descAckPending, prometheus.GaugeValue, float64(info.NumAckPending), o.key.stream, o.key.name)
		})
	}
	if openFn != nil {
		wg.Go(func() {
			if n, err := openFn(ctx); err == nil {
				ch <- prometheus.MustNewConstMetric(descOpen, prometheus.GaugeValue, float64(n))
			}
		})
	}
	wg.Wait()
}

// ReasonClass sorts a check's reason, in words for a person, into one of a
// few classes, so that a label made of it stays small whatever servers
// say.
func ReasonClass(reason string) string {
	r := strings.ToLower(reason)
	for _, c := range reasonClasses {
		if slices.ContainsFunc(c.words, func(w string) bool { return strings.Contains(r, w) }) {
			return c.class
		}
	}
	return "other"
}

var reasonClasses = []struct {
	class string
	words []string
}{
	{"timeout", []string{"timeout", "timed out", "deadline"}},
	{"refused", []string{"connection refused"}},
	{"reset", []string{"reset", "closed the connection", "broken pipe"}},
	{"dns", []string{"no such host", "dns"}},
	{"unreachable", []string{"unreachable", "no route"}},
	{"certificate", []string{"certificate", "tls", "x509"}},
	{"status", []string{"expected", "status"}},
	{"keyword", []string{"keyword"}},
	{"protocol", []string{"banner", "ehlo", "starttls", "greeting", "login", "auth", "unexpected"}},
}
