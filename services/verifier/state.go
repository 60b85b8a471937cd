package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
	"github.com/tocsin-alarm/tocsin/services/verifier/internal/judge"
)

// record is what the bucket holds per server: the judge's state (which
// holds the events.ServerRecord other services read), the events decided
// but perhaps not yet published, and the rest of the work a decision
// leaves to do. It is one value under one key so that writing a decision
// and the work it leaves to do is one atomic write; readers decode
// events.ServerRecord and never see the rest.
type record struct {
	judge.Server
	bus.Outbox
	// BoxDirty says the server's state changed and its box is still to be
	// judged again.
	BoxDirty bool `json:"box_dirty,omitempty"`
	// Leave: the server is back and its incident is still to hear of it.
	Leave *leaving `json:"leave,omitempty"`
	// Flap: the server was marked flapping and its incident is still to
	// tell staff.
	Flap *leaving `json:"flap,omitempty"`
}

// leaving is a server's departure from its incident, recorded with the
// server's state so that a crash before it is carried out does not lose it.
type leaving struct {
	Incident string    `json:"incident"`
	At       time.Time `json:"at"`
	// Withdrawn: taken out of service rather than back up.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Outage, when set, is the outage the server leaves: if it joined the
	// incident again since, for a newer one, it does not leave. The
	// server's own work, done in order, needs none; the sweep does.
	Outage string `json:"outage,omitempty"`
}

// unfinished reports whether the record holds work not yet carried out.
func (rec *record) unfinished() bool {
	return len(rec.Pending) > 0 || rec.BoxDirty || rec.Leave != nil || rec.Flap != nil
}

// cached is a server's record as this process last read or wrote it, and
// the revision to update it at.
type cached struct {
	rec record
	rev uint64
}

// cached is the record of a server, if this process holds it or knows
// there is none.
func (v *Verifier) cached(server string) (cached, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[server]
	if !ok && v.loaded && !v.doubt[server] {
		return cached{}, true // never recorded
	}
	return c, ok
}

// remember keeps a server's record as just read or written; revision 0
// forgets it, to be read afresh.
func (v *Verifier) remember(server string, rec record, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev == 0 {
		delete(v.cache, server)
		v.doubt[server] = true
		return
	}
	v.cache[server] = cached{rec, rev}
	delete(v.doubt, server)
}

// known is the record of a server as this process last wrote or read it,
// if it holds one.
func (v *Verifier) known(server string) (cached, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	c, ok := v.cache[server]
	return c, ok
}

// preloadStall is how long reading the server states may pause before
// the read is given up as stalled.
const preloadStall = 30 * time.Second

// preload reads every server's record in one pass, so that the first
// result of each after a start need not read the bucket: tens of thousands
// of reads, one per server, otherwise.
func (v *Verifier) preload(ctx context.Context, servers bus.Records) error {
	w, err := servers.KV.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read server states: %w", err)
	}
	defer w.Stop()
	all := map[string]cached{}
	// A connection lost in the middle leaves the watcher silent rather
	// than closed: waiting is bounded, by ctx and by a pause in what
	// arrives, so that the verifier fails and is started again instead of
	// hanging.
	stalled := time.NewTimer(preloadStall)
	defer stalled.Stop()
	for done := false; !done; {
		select {
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				done = true // all read
				break
			}
			var rec record
			servers.Decode(e.Key(), e.Value(), &rec)
			all[e.Key()] = cached{rec, e.Revision()}
			stalled.Reset(preloadStall)
		case <-stalled.C:
			return fmt.Errorf("read server states: nothing arrived for %v after %d records", preloadStall, len(all))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cache, v.loaded = all, true
	return nil
}

// load reads a server's record and the revision to update it at; 0 for a
// server never seen.
func (v *Verifier) load(ctx context.Context, servers bus.Records, server string) (record, uint64, error) {
	var rec record
	rev, err := servers.Read(ctx, server, &rec)
	return rec, rev, err
}

// save writes a record that leaves no work to do, only if nobody wrote it
// since rev; a lost race is retried by redelivery, against the newer
// record.
func save(ctx context.Context, servers bus.Records, server string, rec record, rev uint64) (uint64, error) {
	rev, err := bus.PutJSON(ctx, servers.KV, server, rec, rev)
	if err != nil {
		return 0, fmt.Errorf("record state of %s: %w", server, err)
	}
	return rev, nil
}

// commit records a decision with the events it implies and the work it
// leaves, then carries them out. Recording first means a decision is never
// half carried out: after a crash, the work waits in the record for the
// server's next result. The revision returned is 0 when the record must be
// read afresh.
func (v *Verifier) commit(ctx context.Context, st stores, target config.Target, rec record, rev uint64) (record, uint64, error) {
	id := target.Server.ID
	if !rec.unfinished() {
		rev, err := save(ctx, st.servers, id, rec, rev)
		if err != nil {
			return rec, 0, err
		}
		v.remember(id, rec, rev)
		return rec, rev, nil
	}
	_, rev, err := st.servers.Commit(ctx, id, &rec, rev, func(ctx context.Context, written uint64) error {
		// Known at once to the judgement of its box, in this process:
		// see boxServers.
		v.remember(id, rec, written)
		return v.carryOut(ctx, st, target, &rec)
	})
	return rec, rev, err
}

// finish carries out what a stored record holds and marks it done. If the
// mark cannot be written the work is done again later, harmlessly, and the
// revision returned is 0: read the record afresh.
func (v *Verifier) finish(ctx context.Context, st stores, target config.Target, rec record, rev uint64) (record, uint64, error) {
	rev, err := st.servers.Finish(ctx, target.Server.ID, &rec, rev, func(ctx context.Context, _ uint64) error {
		return v.carryOut(ctx, st, target, &rec)
	})
	return rec, rev, err
}

// carryOut does what a record holds besides its events, once they are
// published: tells its incident the server is flapping or back, and, if
// its state changed, judges its box again; then marks it done in rec.
func (v *Verifier) carryOut(ctx context.Context, st stores, target config.Target, rec *record) error {
	if rec.Flap != nil {
		if _, err := v.updateIncident(ctx, st.incidents, rec.Flap.Incident, func(inc *incidentRecord) (events.Payload, bool) {
			if inc.ID == "" {
				return nil, false
			}
			return inc.Flap(target.Server.ID, rec.Flap.At), true
		}); err != nil {
			return err
		}
	}
	if rec.Leave != nil {
		if err := v.leave(ctx, st, target, *rec.Leave); err != nil {
			return err
		}
	}
	if rec.BoxDirty {
		if err := v.judgeBox(ctx, st, target.Box, rec.Since); err != nil {
			return err
		}
	}
	rec.BoxDirty, rec.Leave, rec.Flap = false, nil, nil
	return nil
}

// errUnmarked is a record whose work was carried out but could not be
// marked so.
var errUnmarked = errors.New("carried out what the record held, but could not say so; retrying")
