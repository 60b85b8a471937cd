package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// role is what a box of the generated fleet does, and how its servers are
// checked; the checks are never run, only shown nowhere (they are internal).
type role struct {
	id, label, colour, name, check string
}

var roles = []role{
	{"web", "Web hosting", "#27ae60", "Web", "https://%s.internal.example.net/"},
	{"mx", "Incoming mail (MX)", "#2e86de", "Mail", "smtp://%s.internal.example.net:25"},
	{"smtp", "Outgoing mail", "#8e44ad", "Relay", "tcp://%s.internal.example.net:587"},
	{"dns", "DNS", "#e67e22", "DNS", "dns://%s.internal.example.net/example.net?type=A"},
	{"db", "Databases", "#c0392b", "Database", "tcp://%s.internal.example.net:5432"},
	{"vps", "Virtual servers", "#16a085", "Host", "tcp://%s.internal.example.net:22"},
}

// fleet is the generated configuration: boxes of two and three servers in
// turn, each box with a role, every third box's servers with public names,
// one server in fifty not yet in service.
type fleet struct {
	boxes []fleetBox
}

type fleetBox struct {
	id, name string
	role     role
	servers  []fleetServer
}

type fleetServer struct {
	id, publicName string
	inService      bool
}

func newFleet(servers int) *fleet {
	f := &fleet{}
	n := 0
	for i := 0; n < servers; i++ {
		size, left := 2+i%2, servers-n
		switch {
		case left <= 3:
			size = left
		case left-size == 1:
			size = 2
		}
		r := roles[i%len(roles)]
		b := fleetBox{id: fmt.Sprintf("b%05d", i), name: fmt.Sprintf("%s %d", r.name, i+1), role: r}
		for j := range size {
			s := fleetServer{id: fmt.Sprintf("s%06d", n), inService: n%50 != 49}
			if i%3 == 0 {
				s.publicName = fmt.Sprintf("%s %d%c", r.name, i+1, 'a'+j)
			}
			b.servers = append(b.servers, s)
			n++
		}
		f.boxes = append(f.boxes, b)
	}
	return f
}

func (f *fleet) yaml() []byte {
	var y strings.Builder
	y.WriteString("site: {name: Example Hosting, status_url: \"https://status.example.net\"}\nlocations: [lon1]\n")
	y.WriteString("staff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 1, from: a@example.net, tls: none}}\n")
	y.WriteString("roles:\n")
	for _, r := range roles {
		fmt.Fprintf(&y, "  %s: {label: %q, colour: %q}\n", r.id, r.label, r.colour)
	}
	y.WriteString("boxes:\n")
	for _, b := range f.boxes {
		fmt.Fprintf(&y, "  - id: %s\n    name: %s\n    role: %s\n    servers:\n", b.id, b.name, b.role.id)
		for _, s := range b.servers {
			fmt.Fprintf(&y, "      - {id: %s, check: %q", s.id, fmt.Sprintf(b.role.check, s.id))
			if s.publicName != "" {
				fmt.Fprintf(&y, ", public_name: %q", s.publicName)
			}
			if !s.inService {
				y.WriteString(", in_service: false")
			}
			y.WriteString("}\n")
		}
	}
	return []byte(y.String())
}

// serverName is how the page names a server.
func (b fleetBox) serverName(j int) string {
	if n := b.servers[j].publicName; n != "" {
		return n
	}
	return fmt.Sprintf("%s %d", b.name, j+1)
}

// expected is what summary.json shows once the page has taken in the
// whole state.
type expected struct {
	dated       int // server components with a known state, and so a date
	incidents   int // unresolved public incidents
	maintenance int // upcoming and active public maintenance windows
	indicator   string
}

// The boxes the scenario gives a part; the fleet has at least 8 boxes.
const (
	boxDown        = 0 // down for 40 minutes: a public incident, a staff note
	boxResolved    = 1 // down yesterday for 25 minutes, resolved
	boxDegraded    = 2 // one server down: an incident the public does not see
	boxMaintenance = 3 // in a maintenance window now
	boxUpcoming    = 4 // a maintenance window the day after tomorrow, with the next box
	boxPrivate     = 6 // a maintenance window the public is not told of
	boxOld         = 7 // down for an hour 20 days ago, resolved
	scenarioBoxes  = 8
)

// write puts the fleet's state where the verifier and the maintenance
// service keep it, and announces the incidents as the verifier does.
func (f *fleet) write(ctx context.Context, b *bus.Bus, now time.Time) (expected, error) {
	var want expected
	servers, err := b.KV(ctx, events.BucketServers)
	if err != nil {
		return want, err
	}
	boxes, err := b.KV(ctx, events.BucketBoxes)
	if err != nil {
		return want, err
	}
	maint, err := b.KV(ctx, events.BucketMaintenance)
	if err != nil {
		return want, err
	}
	banner, err := b.KV(ctx, events.BucketBanner)
	if err != nil {
		return want, err
	}
	put := func(kv interface {
		Put(context.Context, string, []byte) (uint64, error)
	}, key string, v any) error {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, key, data)
		return err
	}
	downSince := now.Add(-40 * time.Minute)
	for i, bx := range f.boxes {
		boxState, boxSince := events.BoxOperational, now.Add(-time.Duration(1+i%120)*24*time.Hour)
		for j, s := range bx.servers {
			if !s.inService {
				continue
			}
			state, since := events.StateUp, now.Add(-time.Duration(1+(i*7+j)%120)*24*time.Hour-time.Duration(i%24)*time.Hour)
			switch {
			case i == boxDown:
				state, since = events.StateDown, downSince
			case i == boxDegraded && j == 0:
				state, since = events.StateDown, now.Add(-12*time.Minute)
			case i == boxMaintenance:
				state, since = events.StateMaintenance, now.Add(-30*time.Minute)
			case i == boxResolved:
				since = now.Add(-24*time.Hour + 25*time.Minute)
			}
			if err := put(servers, s.id, map[string]any{"id": s.id, "state": state, "since": since}); err != nil {
				return want, fmt.Errorf("write server %s: %w", s.id, err)
			}
			want.dated++
		}
		switch i {
		case boxDown:
			boxState, boxSince = events.BoxDown, downSince
		case boxDegraded:
			boxState, boxSince = events.BoxDegraded, now.Add(-12*time.Minute)
		case boxMaintenance:
			boxState, boxSince = events.BoxMaintenance, now.Add(-30*time.Minute)
		case boxResolved:
			boxSince = now.Add(-24*time.Hour + 25*time.Minute)
		}
		if err := put(boxes, bx.id, map[string]any{"state": boxState, "since": boxSince}); err != nil {
			return want, fmt.Errorf("write box %s: %w", bx.id, err)
		}
	}

	// The incidents, as the verifier announces them, with the box changes
	// that feed the uptime bars.
	day := now.Format("20060102")
	var evs []events.Event
	outage := func(id string, box int, state events.BoxState, from time.Time, took time.Duration, note bool) {
		bx := f.boxes[box]
		var affected []events.AffectedServer
		var down []string
		for j, s := range bx.servers {
			if state == events.BoxDegraded && j > 0 {
				break
			}
			affected = append(affected, events.AffectedServer{Server: s.id, Box: bx.id, Check: fmt.Sprintf(bx.role.check, s.id), Since: from,
				Reason: "connection refused", BoxState: state})
			down = append(down, s.id)
		}
		evs = append(evs,
			events.New(bx.id+"/state/"+id, "verifier", from, &events.BoxStateChanged{Box: bx.id, From: events.BoxOperational, To: state, Since: from, Down: down}),
			events.New(id+"/opened", "verifier", from, &events.IncidentOpened{Incident: id, Opened: from,
				Title: fmt.Sprintf("%d servers of %s are down", len(down), bx.name), Servers: affected}))
		if note {
			evs = append(evs, events.New(id+"/note/1", "statuspage", from.Add(10*time.Minute), &events.IncidentNote{Incident: id, Seq: 1,
				Status: events.NoteIdentified, Message: "A failed switch in the rack; we are replacing it.", By: "Alice", At: from.Add(10 * time.Minute)}))
		}
		if took > 0 {
			to := from.Add(took)
			evs = append(evs,
				events.New(bx.id+"/state/"+id+"-up", "verifier", to, &events.BoxStateChanged{Box: bx.id, From: state, To: events.BoxOperational, Since: to}),
				events.New(id+"/resolved", "verifier", to, &events.IncidentResolved{Incident: id, Opened: from, Resolved: to,
					Title: fmt.Sprintf("%d servers of %s are down", len(down), bx.name), Servers: down}))
		}
	}
	outage(day+"-old001", boxOld, events.BoxDown, now.Add(-20*24*time.Hour), time.Hour, false)
	outage(day+"-yest01", boxResolved, events.BoxDown, now.Add(-24*time.Hour), 25*time.Minute, true)
	outage(day+"-down01", boxDown, events.BoxDown, downSince, 0, true)
	outage(day+"-degr01", boxDegraded, events.BoxDegraded, now.Add(-12*time.Minute), 0, false)
	for _, ev := range evs {
		if err := b.Publish(ctx, ev); err != nil {
			return want, err
		}
	}
	want.incidents, want.indicator = 1, "major"

	windows := []events.MaintenanceSet{
		{Maintenance: "switch-swap", Boxes: []string{f.boxes[boxMaintenance].id}, From: now.Add(-30 * time.Minute), Until: now.Add(90 * time.Minute),
			Reason: "Replacing the core switch", Public: true, By: "config"},
		{Maintenance: "kernel-upgrade", Boxes: []string{f.boxes[boxUpcoming].id, f.boxes[boxUpcoming+1].id},
			From: now.Add(50 * time.Hour), Until: now.Add(52 * time.Hour), Reason: "Kernel upgrade", Public: true, By: "config"},
		{Maintenance: "disk-check", Boxes: []string{f.boxes[boxPrivate].id}, From: now.Add(3 * time.Hour), Until: now.Add(4 * time.Hour),
			Reason: "Quiet disk check", By: "config"},
	}
	for _, w := range windows {
		for _, id := range w.Boxes {
			for _, bx := range f.boxes {
				if bx.id == id {
					for _, s := range bx.servers {
						w.Servers = append(w.Servers, s.id)
					}
				}
			}
		}
		if err := put(maint, w.Maintenance, w); err != nil {
			return want, fmt.Errorf("write maintenance %s: %w", w.Maintenance, err)
		}
	}
	want.maintenance = 2
	if err := put(banner, events.BannerKey, events.Banner{On: true, Message: "We are experiencing problems with " + f.boxes[boxDown].name + ".",
		Link: "https://status.example.net", Since: downSince}); err != nil {
		return want, err
	}
	return want, nil
}
