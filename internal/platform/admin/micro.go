package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/tocsin-alarm/tocsin/internal/platform/metrics"
)

// Instance is one service running in a process, as it is announced.
type Instance struct {
	Service  string // "prober", "verifier", …
	Location string // a prober's; empty for the others
	Version  string // the binary's
	Admin    string // the admin server's address; empty when there is none
	Started  time.Time
	// Config is a digest of the config the instance runs with, announced
	// so that instances running different configs are seen.
	Config string
}

// name is how the process's readiness knows the instance: "verifier",
// "prober@lon1".
func (in Instance) name() string {
	if in.Location != "" {
		return in.Service + "@" + in.Location
	}
	return in.Service
}

// Status is the answer of an instance's status endpoint. `tocsin status`
// reads these fields by name.
type Status struct {
	ID       string `json:"id"` // the instance's micro id, as discovery gives it
	Service  string `json:"service"`
	Location string `json:"location"` // a prober's; empty for the others
	Ready    bool   `json:"ready"`
	Started  string `json:"started"` // RFC 3339
	Detail   string `json:"detail"`  // "ready", or why not
	// Role, for a service of which one instance works while others stand
	// by (the verifier, notifier, escalator, failover): "active" or
	// "standby"; absent when it has no such role or it is not known yet.
	Role string `json:"role,omitempty"`
}

// MicroName is the micro service name of a Tocsin service.
func MicroName(service string) string { return "tocsin-" + service }

// StatusSubject is where a Tocsin service answers status requests; every
// instance of the service answers each request, a standing-by verifier as
// well as the active one, so that `tocsin status` hears from them all.
func StatusSubject(service string) string { return "tocsin.status." + service }

// Register announces an instance with the NATS micro framework: name
// tocsin-<service>, metadata saying what and where it is, and one endpoint,
// status, answering with its Status. Stop the returned service at shutdown.
func Register(nc *nats.Conn, in Instance, m *metrics.Metrics) (micro.Service, error) {
	md := map[string]string{"service": in.Service}
	if in.Location != "" {
		md["location"] = in.Location
	}
	if in.Admin != "" {
		md["admin"] = in.Admin
	}
	if in.Config != "" {
		md["config"] = in.Config
	}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        MicroName(in.Service),
		Version:     semver(in.Version),
		Description: "Tocsin " + in.Service,
		Metadata:    md,
	})
	if err != nil {
		return nil, fmt.Errorf("register %s with nats micro: %w", in.name(), err)
	}
	var id string // known once the service is added, before it can be asked
	status := func(req micro.Request) {
		ready, detail := m.Ready(in.name())
		role := ""
		if ready {
			detail = "ready"
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			role = m.Role(ctx, in.name())
			cancel()
		}
		b, _ := json.Marshal(Status{
			ID: id, Service: in.Service, Location: in.Location, Ready: ready,
			Started: in.Started.UTC().Format(time.RFC3339), Detail: detail, Role: role,
		})
		_ = req.Respond(b) // a requester gone away is no concern of ours
	}
	id = svc.Info().ID
	if err := svc.AddEndpoint("status", micro.HandlerFunc(status), micro.WithEndpointSubject(StatusSubject(in.Service)), micro.WithEndpointQueueGroupDisabled()); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("register %s status endpoint: %w", in.name(), err)
	}
	// Registered means found by whoever asks through the same server:
	// "tocsin status" run the moment after the service said it was
	// running must not miss it (through another server of a cluster, it
	// may for the moment the routes take). Not while cut off
	// from NATS, though (an off-site status page starts so): the
	// subscriptions go when the connection comes back.
	if nc.IsConnected() {
		_ = nc.FlushTimeout(2 * time.Second)
	}
	return svc, nil
}

// semverRE is the form micro accepts (semver.org's).
var (
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	notIdent = regexp.MustCompile(`[^0-9A-Za-z-]+`)
)

// semver turns a build's version into the semantic version micro insists
// on: "v1.2.3" → "1.2.3", "dev" → "0.0.0-dev".
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	if semverRE.MatchString(v) {
		return v
	}
	clean := strings.Trim(notIdent.ReplaceAllString(v, "-"), "-")
	if clean == "" || !semverRE.MatchString("0.0.0-"+clean) {
		clean = "unknown"
	}
	return "0.0.0-" + clean
}

// MaxAnswers bounds what one Ask holds: it returns at most this many, and
// its inbox queues no more (as many as wanted, when want is given), so that
// a flood on the inbox costs little: the client drops what overflows, as a
// slow consumer's. It is far above any fleet's instances.
const MaxAnswers = 4096

// Ask sends one request to each subject, all answered to one inbox, and
// gathers the answers: until want of them have come (want > 0), wait has
// passed, or ctx ends. Discovery and status requests are answered by every
// instance, so there is no telling otherwise when the last has spoken.
// The inbox's queue is sized to the answers expected, not the client's
// default of 64k (half a megabyte a call, asked every few seconds).
func Ask(ctx context.Context, nc *nats.Conn, subjects []string, wait time.Duration, want int) ([]*nats.Msg, error) {
	inbox := nc.NewRespInbox()
	queue := MaxAnswers
	if want > 0 {
		queue = min(max(want, len(subjects)), MaxAnswers)
	}
	ch := make(chan *nats.Msg, queue)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	for _, s := range subjects {
		if err := nc.PublishRequest(s, inbox, nil); err != nil {
			return nil, fmt.Errorf("ask %s: %w", s, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var got []*nats.Msg
	unheard := 0 // subjects the server says nobody listens on
	// The client never closes the channel of a subscription like this one:
	// a connection closed meanwhile is looked for.
	closed := time.NewTicker(250 * time.Millisecond)
	defer closed.Stop()
	for (want <= 0 || len(got) < want) && len(got) < MaxAnswers {
		select {
		case <-closed.C:
			if nc.IsClosed() {
				return got, nats.ErrConnectionClosed
			}
		case <-ctx.Done():
			if nc.IsClosed() {
				return got, nats.ErrConnectionClosed
			}
			return got, nil // the time for answers is up
		case m := <-ch:
			if noResponders(m) {
				if unheard++; unheard == len(subjects) {
					return got, nil
				}
				continue
			}
			got = append(got, m)
		}
	}
	return got, nil
}

// noResponders reports whether m is the server's word that nobody
// listens on the subject asked: no data, status 503.
func noResponders(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") == "503"
}
