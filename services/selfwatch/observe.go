package selfwatch

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/pipeline"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// locations finds each configured location with no fresh heartbeat: its
// probers stopped, or cannot reach the bus.
func (s *Service) locations(ctx context.Context, rec *record, now time.Time) ([]trouble, error) {
	heard, err := pipeline.Locations(ctx, s.bus, now)
	if err != nil {
		return nil, err
	}
	if rec.Heard == nil {
		rec.Heard = map[string]time.Time{}
	}
	var found []trouble
	for _, l := range s.cfg.Locations {
		h := heard[l]
		if h.Last.After(rec.Heard[l]) {
			rec.Heard[l] = h.Last
		}
		if h.Live > 0 {
			rec.Heard[l] = now
			continue
		}
		t := trouble{Kind: events.SelfLocation, What: l, Since: rec.Heard[l],
			Title:  fmt.Sprintf("prober %s has not checked anything since %s", l, clock(rec.Heard[l])),
			Action: fmt.Sprintf("is its host up, and does it reach the bus? Start it with `tocsin run --services prober --location %s`; `tocsin status` shows what runs", l),
		}
		if rec.Heard[l].IsZero() {
			t.Title = fmt.Sprintf("prober %s is not checking anything: no heartbeat from it since the watcher started", l)
		}
		found = append(found, t)
	}
	// Locations no longer in the config are forgotten.
	for l := range rec.Heard {
		if !slices.Contains(s.cfg.Locations, l) {
			delete(rec.Heard, l)
		}
	}
	return found, nil
}

// services finds the expected services nobody runs (probers are the
// locations' concern), the services whose instances all stand by, and
// instances that run different configs.
func (s *Service) services(ctx context.Context) ([]trouble, error) {
	instances, err := pipeline.Discover(ctx, s.bus.NC, s.discover)
	if err != nil {
		return nil, err
	}
	var found []trouble
	want := maps.Clone(s.expected)
	delete(want, "prober")
	for _, m := range pipeline.Missing(instances, want) {
		found = append(found, trouble{Kind: events.SelfService, What: m,
			Title:  fmt.Sprintf("no %s is running", m),
			Action: fmt.Sprintf("start it (`tocsin run --services %s`, or its systemd unit), and see its logs for why it stopped; `tocsin status`", strings.Split(m, "@")[0]),
		})
	}
	for _, m := range pipeline.NoneActive(instances) {
		found = append(found, trouble{Kind: events.SelfService, What: m,
			Title:  fmt.Sprintf("no %s is active: every instance answering stands by", m),
			Action: "the active instance stopped answering and no standby took over: restart one; `tocsin status`",
		})
	}
	byDigest := map[string][]string{}
	for _, i := range instances {
		if i.Config != "" && !slices.Contains(byDigest[i.Config], i.Label()) {
			byDigest[i.Config] = append(byDigest[i.Config], i.Label())
		}
	}
	if len(byDigest) > 1 {
		var parts []string
		for _, d := range slices.Sorted(maps.Keys(byDigest)) {
			parts = append(parts, fmt.Sprintf("%s on %s", strings.Join(byDigest[d], ", "), d))
		}
		found = append(found, trouble{Kind: events.SelfConfig, What: "config",
			Title:  fmt.Sprintf("instances run %d different configs", len(byDigest)),
			Action: "deploy the same tocsin.yaml to every host and restart the services that run an old one (`tocsin validate` first)",
			Detail: strings.Join(parts, "; "),
		})
	}
	return found, nil
}

// backlog finds the consumers behind by more than max_lag, and dead
// letters that grew within dead_letters_quiet.
func (s *Service) backlog(ctx context.Context, rec *record, now time.Time) ([]trouble, error) {
	lags, dead, err := pipeline.ConsumerLags(ctx, s.bus.JS)
	if err != nil {
		return nil, err
	}
	var found []trouble
	for _, c := range lags {
		if c.Pending > s.cfg.Selfwatch.MaxLag {
			found = append(found, trouble{Kind: events.SelfLag, What: c.Consumer,
				Title:  fmt.Sprintf("consumer %s is %d messages behind", c.Consumer, c.Pending),
				Action: fmt.Sprintf("is the service that reads %s running and healthy? Look at its logs and `tocsin status`", c.Stream),
			})
		}
	}
	switch {
	case !rec.Counted:
		rec.Counted = true // what was set aside before the watcher started is tocsin status's to show
	case dead > rec.Dead:
		rec.DeadGrew = now
	}
	rec.Dead = dead
	if !rec.DeadGrew.IsZero() && now.Sub(rec.DeadGrew) < s.cfg.Selfwatch.DeadLettersQuiet.D() {
		found = append(found, trouble{Kind: events.SelfDeadLetters, What: events.StreamDeadLetters, Since: rec.DeadGrew,
			Title:  fmt.Sprintf("messages are being set aside as dead letters (%d now, last at %s)", dead, clock(rec.DeadGrew)),
			Action: "a service cannot handle some messages: read why in `nats stream view TOCSIN_DEAD` (header Tocsin-Dead-Reason) and the logs",
		})
	}
	return found, nil
}
