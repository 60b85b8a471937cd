package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/readmodel/incident"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// snapshot is the page's state on disk, so that a page restarted while its
// link to the monitoring system is down serves the last state it knew, and
// says how old it is, instead of an empty page. Off-site, on another
// network, that is exactly when it is needed.
type snapshot struct {
	Format int `json:"format"`
	// Known is when the state was last known to be current: when it was
	// saved with the link up, or when the link was lost.
	Known       time.Time                        `json:"known"`
	Updated     time.Time                        `json:"updated"`
	Servers     map[string]savedState            `json:"servers"`
	Boxes       map[string]savedBox              `json:"boxes"`
	Incidents   []savedIncident                  `json:"incidents"`
	Maintenance map[string]events.MaintenanceSet `json:"maintenance"`
	Banner      events.Banner                    `json:"banner"`
	// StaleAlert is what staff were emailed about the latest loss of the
	// link, so that a restart does not email them again.
	StaleAlert *staleEpisode `json:"stale_alert,omitempty"`
}

const snapshotFormat = 1

type savedState struct {
	State events.ServerState `json:"state"`
	Since time.Time          `json:"since"`
}

type savedBox struct {
	State   events.BoxState `json:"state"`
	Since   time.Time       `json:"since"`
	History []savedChange   `json:"history,omitempty"`
}

type savedChange struct {
	At    time.Time       `json:"at"`
	From  events.BoxState `json:"from,omitempty"`
	State events.BoxState `json:"state"`
}

type savedIncident struct {
	incident.View
	Public    bool      `json:"public"`
	Updated   time.Time `json:"updated"`
	DownBoxes []string  `json:"down_boxes,omitempty"`
}

// snapshot copies the state; call with mu held for reading.
func (p *page) snapshot() snapshot {
	known := p.now()
	if !p.live {
		known = p.lostSince
	}
	if known.IsZero() {
		// Stopped before it first said it was live: what it holds is
		// known as of its last change at least.
		known = p.updated
	}
	s := snapshot{
		Format: snapshotFormat, Known: known, Updated: p.updated,
		Servers: map[string]savedState{}, Boxes: map[string]savedBox{}, Maintenance: p.maintenance, Banner: p.banner,
	}
	if !p.stale.Since.IsZero() {
		ep := p.stale
		s.StaleAlert = &ep
	}
	for id, sv := range p.servers {
		s.Servers[id] = savedState{sv.state, sv.since}
	}
	for _, b := range p.boxes {
		sb := savedBox{State: b.state, Since: b.since}
		for _, c := range b.history {
			sb.History = append(sb.History, savedChange{c.at, c.from, c.state})
		}
		s.Boxes[b.id] = sb
	}
	for _, inc := range p.incidents {
		s.Incidents = append(s.Incidents, savedIncident{inc.View, inc.public, inc.updated, inc.downBoxes})
	}
	return s
}

// restore takes in a saved state: the link is down until it is seen up, and
// has been since the state was last known. Servers and boxes no longer in
// the config are left out.
func (p *page) restore(s snapshot) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, st := range s.Servers {
		if sv, ok := p.servers[id]; ok && st.State.Valid() {
			sv.state, sv.since = st.State, st.Since
		}
	}
	for _, b := range p.boxes {
		sb, ok := s.Boxes[b.id]
		if !ok || !sb.State.Valid() {
			continue
		}
		b.state, b.since, b.history = sb.State, sb.Since, nil
		for _, c := range sb.History {
			b.history = append(b.history, boxChange{c.At, c.From, c.State})
		}
		b.pruneHistory(p.now())
	}
	for _, inc := range s.Incidents {
		if inc.Incident == "" {
			continue
		}
		down := inc.DownBoxes
		if inc.Public && len(down) == 0 {
			down = slices.Clone(inc.Boxes) // saved by a page that did not keep which boxes were down
		}
		p.incidents[inc.Incident] = &publicIncident{View: inc.View, public: inc.Public, updated: inc.Updated, downBoxes: down}
	}
	p.pruneIncidents()
	for id, w := range s.Maintenance {
		p.maintenance[id] = w
	}
	p.banner = s.Banner
	if s.StaleAlert != nil {
		p.stale = *s.StaleAlert
	}
	p.live, p.lostSince = false, s.Known
	p.touch(nil)
	p.updated = s.Updated
}

// loadState reads the state saved in file into the page; a missing file is
// no state, an unreadable one is reported and left for the next save to
// replace.
func (s *Service) loadState(file string) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the saved state: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return fmt.Errorf("%s: the saved state is unreadable: %w", file, err)
	}
	if snap.Format != snapshotFormat {
		return fmt.Errorf("%s: saved state of format %d, this version reads %d", file, snap.Format, snapshotFormat)
	}
	s.page.restore(snap)
	return nil
}

// saveState writes the page's state to file, atomically: a crash leaves the
// previous state or the new one, never half of either.
func (s *Service) saveState(file string) error {
	s.page.mu.RLock()
	snap := s.page.snapshot()
	b, err := json.Marshal(snap)
	s.page.mu.RUnlock()
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save the page's state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".statuspage-*.tmp")
	if err != nil {
		return fmt.Errorf("save the page's state: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save the page's state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save the page's state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save the page's state: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("save the page's state: %w", err)
	}
	return nil
}

// keepSaving saves the state whenever it has changed, at most every
// `every`, and once more when ctx ends. While the link is up it also saves
// every minute, so that the saved state never looks older than it is.
func (s *Service) keepSaving(ctx context.Context, file string, every time.Duration) {
	var saved uint64
	var at time.Time
	save := func() {
		v := s.page.version.Load()
		s.page.mu.RLock()
		live := s.page.live
		s.page.mu.RUnlock()
		if v == saved && !(live && time.Since(at) >= time.Minute) {
			return
		}
		if err := s.saveState(file); err != nil {
			s.log.Warn("the page's state is not saved; retrying", "err", err)
			return
		}
		saved, at = v, time.Now()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			save()
			return
		case <-tick.C:
			save()
		}
	}
}
