package events

import "time"

// The records below are what one service leaves in a key-value bucket for
// others to read. They are a contract like the events: their JSON is what
// stores already hold and what every reader decodes, so a field is renamed
// or dropped only with every reader, and testdata/records holds each one's
// wire form. A writer may store more in the same value for itself (the
// verifier keeps its working state beside what it shares); readers decode
// into these types and never depend on the rest.

// ServerRecord is one server's state, in BucketServers under the server's
// id.
//
// Written by the verifier, with every result that changes the server, and
// at start for the servers the config takes out of service. Read by the
// status page (its dots and "online for"), failover (whether a state
// change it holds is still current), and the fleet reader behind `tocsin
// status` and `tocsin affected`.
type ServerRecord struct {
	ID    string      `json:"id"`
	State ServerState `json:"state"`
	Since time.Time   `json:"since"` // when the current state began
	// UpSince is when the server last came up, for "online for 37 days":
	// a failure being verified (suspect) and a false alarm do not end it,
	// since as far as anyone could tell the server never went away. Zero
	// while it is down, and in records written before it existed.
	UpSince time.Time `json:"up_since,omitzero"`
}

// BoxRecord is one box's state, in BucketBoxes under the box's id.
//
// Written by the verifier whenever the state of one of the box's servers
// changes. Read by the status page and the fleet reader behind `tocsin
// status` and `tocsin affected`.
type BoxRecord struct {
	State BoxState  `json:"state"`
	Since time.Time `json:"since"` // when the current state began
}

// OpenIncidents is the incidents open in one datacentre, in
// BucketIncidents under KeyOpenIncidents(datacentre): what a server
// confirmed down there may join, and the one place that says which
// incidents are open without reading every incident.
//
// Written by the verifier as servers join incidents and incidents
// resolve. Read by the verifier (to group an outage into one incident and
// to count the open ones) and by the fleet reader behind `tocsin status`,
// `tocsin affected` and the status page's admin API.
type OpenIncidents struct {
	Incidents []OpenIncident `json:"incidents"`
}

// OpenIncident is one open incident: the boxes it holds servers of, and
// when a server last joined it.
type OpenIncident struct {
	ID        string    `json:"id"`
	Boxes     []string  `json:"boxes"`
	LastAdded time.Time `json:"last_added"`
}

// KeyOpenIncidents is where the incidents open in a datacentre are listed;
// boxes in no datacentre are listed together, under "open._".
func KeyOpenIncidents(datacentre string) string {
	if datacentre == "" {
		return "open._"
	}
	return "open." + datacentre
}

// FilterOpenIncidents matches every datacentre's list of open incidents.
const FilterOpenIncidents = "open.*"

// Heartbeat is one prober's announcement that it is alive, in
// BucketLocations under its Key; a location is live while one of its
// heartbeats is fresh.
//
// Written by every prober, every few seconds, and deleted when it stops.
// Read by every prober's scheduler and by the verifier (which locations
// may take a task), and by `tocsin status` (which locations are silent).
type Heartbeat struct {
	Location string    `json:"location"`
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`  // when this prober started
	TTLMS    int64     `json:"ttl_ms"` // how long this heartbeat vouches for the prober
}

// Key is where the heartbeat is kept: "<location>.<instance>", so that a
// reader can hold each heartbeat to its own location's keys.
func (h Heartbeat) Key() string { return h.Location + "." + h.Instance }
