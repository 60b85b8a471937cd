package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/failover/internal/haproxy"
	"github.com/tocsin-alarm/tocsin/services/failover/internal/webhook"
)

// Target is one place where a box's servers are pooled: a backend of one
// HAProxy, or whatever stands behind a webhook.
type Target interface {
	// ID names the target in records and event ids: haproxy-1, webhook.
	ID() string
	// Via is the kind of target: haproxy or webhook.
	Via() string
	// Describe names the server at this target, in words for staff.
	Describe(name string) string
	// States reads where each of names stands now. known is false when the
	// target cannot tell (a webhook): the caller then relies on its own
	// record alone.
	States(ctx context.Context, names []string) (states map[string]PoolState, known bool, err error)
	// Apply takes a server out of the pool or puts it back, and returns
	// once the target confirms it. Doing it twice does no harm. An error
	// marked bus.Permanent is a refusal that trying again cannot change.
	Apply(ctx context.Context, r Request) error
}

// PoolState is where a server stands at a target.
type PoolState struct {
	Serving  bool // it takes new traffic
	Excluded bool // an administrator has it out: maintenance, or draining
}

// Request is one action on one server.
type Request struct {
	ID     string // the action's; the same on every attempt
	Action events.Action
	Server string // its id
	Name   string // its name in the load balancer
	Box    string
	Change events.Event // the state change that called for the action
	At     time.Time
}

// targetsOf builds the targets of a box's failover, in the config's order.
func targetsOf(f *config.Failover, now func() time.Time) []Target {
	var ts []Target
	for i, h := range f.HAProxy {
		ts = append(ts, &haproxyTarget{
			id:      "haproxy-" + strconv.Itoa(i+1),
			client:  haproxy.New(h.Address, h.Timeout.D()),
			backend: h.Backend,
		})
	}
	if w := f.Webhook; w != nil {
		ts = append(ts, &webhookTarget{client: webhook.New(w.URL, []byte(w.Secret.Reveal()), w.Timeout.D(), now)})
	}
	return ts
}

// haproxyTarget is a backend of one HAProxy: a server is out of the pool
// in maintenance ("set server … state maint"), and back when ready.
type haproxyTarget struct {
	id      string
	client  *haproxy.Client
	backend string
}

func (h *haproxyTarget) ID() string  { return h.id }
func (h *haproxyTarget) Via() string { return "haproxy" }
func (h *haproxyTarget) Describe(name string) string {
	return fmt.Sprintf("haproxy %s %s/%s", h.client.Address(), h.backend, name)
}

func (h *haproxyTarget) States(ctx context.Context, names []string) (map[string]PoolState, bool, error) {
	servers, err := h.client.Servers(ctx, h.backend)
	if err != nil {
		return nil, false, err
	}
	states := map[string]PoolState{}
	for _, s := range servers {
		states[s.Name] = PoolState{
			Serving:  s.Serving(),
			Excluded: s.InMaint() || s.AdminState&(haproxy.AdminForcedDrain|haproxy.AdminInheritedDrain) != 0,
		}
	}
	return states, true, nil
}

func (h *haproxyTarget) Apply(ctx context.Context, r Request) error {
	want := haproxy.Maint
	if r.Action == events.ActionRestore {
		want = haproxy.Ready
	}
	if err := h.client.SetState(ctx, h.backend, r.Name, want); err != nil {
		return err
	}
	s, err := h.client.Server(ctx, h.backend, r.Name)
	if err != nil {
		return fmt.Errorf("confirm %s: %w", want, err)
	}
	if !s.Is(want) {
		return fmt.Errorf("haproxy at %s still shows %s/%s with admin state %#x after setting it %s", h.client.Address(), h.backend, r.Name, s.AdminState, want)
	}
	return nil
}

// webhookTarget posts each action to a webhook.
type webhookTarget struct {
	client *webhook.Client
}

func (w *webhookTarget) ID() string                  { return "webhook" }
func (w *webhookTarget) Via() string                 { return "webhook" }
func (w *webhookTarget) Describe(name string) string { return "webhook " + w.client.Where() }

func (w *webhookTarget) States(context.Context, []string) (map[string]PoolState, bool, error) {
	return nil, false, nil
}

// WebhookBody is what a webhook receives: the action, and the state change
// that called for it in its wire form (the envelope of pkg/events). It is
// the same on every attempt; the X-Tocsin-Timestamp header says when it
// was sent.
type WebhookBody struct {
	ID     string          `json:"id"` // also in X-Tocsin-Id; the same when the request is sent again
	Action events.Action   `json:"action"`
	Server string          `json:"server"`
	Name   string          `json:"name"` // its name in the load balancer
	Box    string          `json:"box"`
	Change json.RawMessage `json:"change"`
}

func (w *webhookTarget) Apply(ctx context.Context, r Request) error {
	change, err := r.Change.Marshal()
	if err != nil {
		return err
	}
	body, err := json.Marshal(WebhookBody{ID: r.ID, Action: r.Action, Server: r.Server, Name: r.Name, Box: r.Box, Change: change})
	if err != nil {
		return err
	}
	return w.client.Send(ctx, r.ID, body)
}
