package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Readiness: which service instances of the process are up, and why not.

// Expect says that a service instance of this process (a name such as
// "verifier" or "prober@lon1") is ready once each named durable consumer
// is set up, or, when it names none, once it says it has Started. A
// service expects when it is made, before it runs, so that readiness
// fails until it has.
func (m *Metrics) Expect(service string, consumers ...string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.units[service] = &unit{consumers: consumers}
}

// Started says that a service instance expecting no durable consumer has
// set up what it follows, and is ready.
func (m *Metrics) Started(service string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.units[service]; ok {
		u.started = true
	}
}

// ConsumerUp says that a durable consumer is set up and delivering. Its
// lag is reported from then on.
func (m *Metrics) ConsumerUp(cons jetstream.Consumer) {
	if m == nil || cons == nil {
		return
	}
	info := cons.CachedInfo()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := consumerKey{info.Stream, info.Name}
	if c, ok := m.consumers[k]; ok {
		c.cons, c.up = cons, true // set up again: the pin is JetStream's, and stays
		return
	}
	m.consumers[k] = &consumerState{cons: cons, up: true}
}

// Pinned records the id JetStream pinned an exclusive consumer to when it
// gave this instance messages: while the consumer's pin is the same, this
// instance is the active one.
func (m *Metrics) Pinned(stream, name, pin string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.consumers[consumerKey{stream, name}]; ok {
		c.pin = pin
	}
}

// Role says whether a service instance is the active one of the exclusive
// consumers it needs ("active"), or stands by for another instance
// ("standby"). It is "" for a service without one, and when JetStream
// does not say or has pinned nobody yet.
func (m *Metrics) Role(ctx context.Context, service string) string {
	if m == nil {
		return ""
	}
	type mine struct {
		cons jetstream.Consumer
		pin  string
	}
	var ask []mine
	m.mu.Lock()
	if u, ok := m.units[service]; ok {
		for k, c := range m.consumers {
			if slices.Contains(u.consumers, k.name) && c.up && c.cons != nil {
				ask = append(ask, mine{c.cons, c.pin})
			}
		}
	}
	m.mu.Unlock()
	role := ""
	for _, c := range ask {
		info, err := c.cons.Info(ctx)
		if err != nil {
			continue
		}
		for _, g := range info.PriorityGroups {
			switch {
			case g.PinnedClientID == "":
			case g.PinnedClientID != c.pin:
				return "standby" // another instance has it
			default:
				role = "active"
			}
		}
	}
	return role
}

// ConsumerDown says that a consumer stopped delivering; it is being set
// up again.
func (m *Metrics) ConsumerDown(stream, name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.consumers[consumerKey{stream, name}]; ok {
		c.up = false
	}
}

// Ready reports whether a service instance is ready and, when it is not,
// why. An instance never expected is not ready.
func (m *Metrics) Ready(service string) (bool, string) {
	if m == nil {
		return false, "no metrics"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readyLocked(service)
}

func (m *Metrics) readyLocked(service string) (bool, string) {
	u, ok := m.units[service]
	if !ok {
		return false, service + " is not running"
	}
	if len(u.consumers) == 0 && !u.started {
		return false, service + " has not started"
	}
	var missing []string
	for _, name := range u.consumers {
		up := false
		for k, c := range m.consumers {
			if k.name == name && c.up {
				up = true
			}
		}
		if !up {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("%s: consumer %s not set up", service, strings.Join(missing, ", "))
	}
	return true, ""
}

// NotReady lists, one line each, why the given service instances are not
// all ready; empty when they are.
func (m *Metrics) NotReady(services []string) []string {
	if m == nil {
		return []string{"no metrics"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var why []string
	for _, s := range services {
		if ok, reason := m.readyLocked(s); !ok {
			why = append(why, reason)
		}
	}
	return why
}
