package notifier

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/notifier/internal/policy"
)

// Position is where an open incident stands in its escalation policy, as
// `tocsin status` shows it to whoever is deciding whether to step in.
type Position struct {
	Incident string          `json:"incident"`
	Stage    string          `json:"stage"` // one of the Stage constants
	Severity events.Severity `json:"severity,omitempty"`
	Started  time.Time       `json:"started,omitzero"` // when the running policy's clock started
	Fired    int             `json:"fired"`            // its rungs settled, fired or skipped
	Rungs    int             `json:"rungs"`            // its rungs in all; 0 when the config is not known
	AckedBy  string          `json:"acked_by,omitempty"`
	AckedAt  time.Time       `json:"acked_at,omitzero"`
	// The next rung, when one is to come: when it fires, and whom it names
	// by which channels.
	Next    time.Time `json:"next,omitzero"`
	NextWho []string  `json:"next_who,omitempty"`
	NextBy  []string  `json:"next_by,omitempty"`
}

// The stages of an incident's escalation.
const (
	StageNotPaged     = "not paged yet" // the notifier has not sent the opening page
	StageNoPolicy     = "no policy"     // a warning, or a flapping server: never escalates
	StageEscalating   = "escalating"    // a rung is still to come
	StageAcknowledged = "acknowledged"  // stopped by an acknowledgement
	StageExhausted    = "every rung fired"
)

// Positions reads where each incident stands in its policy, from the
// state the notifier keeps. cfg, when given, names the rungs still to
// come; without it only what happened is known.
func Positions(ctx context.Context, b *bus.Bus, cfg *config.Config, incidents []string, now time.Time) ([]Position, error) {
	kv, err := b.KV(ctx, events.BucketDeliveries)
	if err != nil {
		return nil, err
	}
	var ps policy.Policies
	if cfg != nil {
		nc := cfg.Notify
		voice := cfg.Providers.Twilio != nil && callerID.MatchString(cfg.Providers.Twilio.From) && nc.PublicURL != "" && nc.LinkKey.IsSet()
		ps = policies(cfg, voice)
	}
	out := make([]Position, 0, len(incidents))
	for _, id := range incidents {
		st, _, err := loadState(ctx, kv, id)
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, err
		}
		out = append(out, position(id, st, ps, cfg, now))
	}
	return out, nil
}

// position is where st stands at now under the policies ps (nil: not
// known).
func position(id string, st incidentState, ps policy.Policies, cfg *config.Config, now time.Time) Position {
	p := Position{Incident: id}
	r := st.Policy
	switch {
	case st.FirstSent.IsZero():
		p.Stage = StageNotPaged
		return p
	case !st.escalating():
		p.Stage = StageNoPolicy
		return p
	}
	p.Severity, p.Started = r.Severity, r.Started
	for _, s := range r.Fired {
		if s.Severity == r.Severity && !s.At.Before(r.Started) {
			p.Fired++
		}
	}
	if r.Ack != nil {
		p.Stage, p.AckedBy, p.AckedAt = StageAcknowledged, r.Ack.By, r.Ack.At
		return p
	}
	p.Stage = StageEscalating
	pol := ps[r.Severity]
	if ps == nil {
		return p
	}
	p.Rungs = len(pol)
	d := policy.Evaluate(ps, r, now, policy.Staff(cfg))
	switch {
	case len(d.Steps) > 0:
		// Due now: the notifier's timer is about to fire it.
		p.Next = d.Steps[0].Due
		p.NextWho, p.NextBy = pol[d.Steps[0].Rung].Who, pol[d.Steps[0].Rung].By
	case !d.Next.IsZero():
		p.Next = d.Next
		for _, rung := range pol {
			if r.Started.Add(rung.After).Equal(d.Next) {
				p.NextWho, p.NextBy = rung.Who, rung.By
				break
			}
		}
	default:
		p.Stage = StageExhausted
	}
	return p
}
