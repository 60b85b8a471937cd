package events

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Subjects. They go from general to specific so that consumers can filter
// with one wildcard: probe.result.> is every result, incident.*.opened every
// new incident.
const (
	SubjectProbeTasks    = "probe.task.>"
	SubjectProbeResults  = "probe.result.>"
	SubjectServerChanges = "server.*.changed"
	SubjectFalseAlarms   = "server.*.false_alarm"
	SubjectBoxChanges    = "box.*.changed"
	SubjectIncidents     = "incident.>"
	SubjectMaintenances  = "maintenance.>"
	SubjectDeadLetters   = "dead.>"
)

// SubjectProbeTask is where the prober at location takes its tasks from.
func SubjectProbeTask(location string) string { return "probe.task." + location }

// SubjectProbeResult is where one location's results for one server go:
// the location is in the subject so that NATS can hold each prober to
// publishing its own location's results.
func SubjectProbeResult(server, location string) string {
	return "probe.result." + server + "." + location
}

// SubjectProbeResultsOf is every location's results for one server.
func SubjectProbeResultsOf(server string) string { return "probe.result." + server + ".*" }

// ResultServer is the server a result's subject names.
func ResultServer(subject string) string {
	if parts := strings.SplitN(subject, ".", 4); len(parts) >= 3 {
		return parts[2]
	}
	return subject
}

// SubjectID is the id a subject names after its kind, as in
// server.<id>.changed and incident.<id>.opened: the key that keeps one
// server's, or one incident's, events in order.
func SubjectID(subject string) string {
	if parts := strings.SplitN(subject, ".", 3); len(parts) >= 2 {
		return parts[1]
	}
	return subject
}

// SubjectServerChanged is where one server's state changes go.
func SubjectServerChanged(server string) string { return "server." + server + ".changed" }

// SubjectFalseAlarm is where one server's false alarms go.
func SubjectFalseAlarm(server string) string { return "server." + server + ".false_alarm" }

// SubjectBoxChanged is where one box's state changes go.
func SubjectBoxChanged(box string) string { return "box." + box + ".changed" }

// SubjectIncident is where one step of an incident's life goes.
func SubjectIncident(id, step string) string { return "incident." + id + "." + step }

// SubjectMaintenance is where one step of a maintenance window's life goes.
func SubjectMaintenance(id, step string) string { return "maintenance." + id + "." + step }

// SubjectDeadLetter is where a consumer sets aside a message it can never handle.
func SubjectDeadLetter(consumer string) string { return "dead." + consumer }

// Streams.
const (
	StreamTasks       = "TOCSIN_TASKS"
	StreamResults     = "TOCSIN_RESULTS"
	StreamEvents      = "TOCSIN_EVENTS"
	StreamDeadLetters = "TOCSIN_DEAD"
)

// Key-value buckets.
const (
	// BucketServers holds the verifier's state of every server, keyed by server id.
	BucketServers = "tocsin-servers"
	// BucketDeliveries records each notification sent, keyed by notification id,
	// so that a redelivered event never sends twice.
	BucketDeliveries = "tocsin-deliveries"
	// BucketBoxes holds the state of every box, keyed by box id.
	BucketBoxes = "tocsin-boxes"
	// BucketLocations holds each live prober's heartbeat, keyed by location
	// and instance; a location is live while one of its heartbeats is fresh.
	BucketLocations = "tocsin-locations"
	// BucketIncidents holds every incident, keyed by incident id, and for
	// each datacentre the incidents open there ("open.<datacentre>"), which
	// servers failing close together join.
	BucketIncidents = "tocsin-incidents"
	// BucketMaintenance holds the maintenance windows, from the config and
	// started at run time, keyed by window id.
	BucketMaintenance = "tocsin-maintenance"
	// BucketEscalations holds the escalator's state of each incident and
	// a record of each step and post carried out, so that none is done twice.
	BucketEscalations = "tocsin-escalations"
	// BucketBanner holds the banner the hosting pages show during a public
	// outage, under BannerKey.
	BucketBanner = "tocsin-banner"
	BannerKey    = "banner"
	// BucketFailover holds failover's record of each server it acts on:
	// the newest state change seen, and where the server stands in each
	// load balancer, so that no action is taken twice.
	BucketFailover = "tocsin-failover"
	// BucketDomains holds the domain watcher's record of each domain the
	// config names: its expiry as last read, its warning if one is open,
	// and the lookups failing. Keyed by the domain with its dots made
	// underscores ("example_net"), which a name of letters, digits and
	// hyphens keeps one-to-one.
	BucketDomains = "tocsin-domains"
)

// TaskDedupWindow is how long JetStream remembers a task id. Scheduler
// replicas publish the same slot within seconds of each other, and a
// restarted scheduler republishes only slots due within TaskGrace, so this
// window covers both with room to spare.
const TaskDedupWindow = 5 * time.Minute

// TaskGrace is how late a scheduler may still publish a slot it finds due.
const TaskGrace = time.Minute

// MaxEventSize is the largest event or incident record the bus stores: an
// incident of a whole datacentre's servers, with its staff updates, fits
// several times over, while one forged message cannot take the store.
const MaxEventSize = 768 << 10

// storeShares split the bus's store on disk between the streams and buckets
// kept on file, in parts of the whole: the history the alarm must not lose
// gets most room, what the next check replaces gets less, a bucket of one
// key per server or location little. A stream or bucket missing here gets
// one part.
var storeShares = map[string]int64{
	// In memory, the two task streams share max_memory evenly: the
	// windows of the last few minutes, and the re-checks and canaries
	// waiting to be taken.
	StreamTasks:       1,
	StreamSchedule:    1,
	StreamEvents:      40,
	StreamResults:     19,
	StreamDeadLetters: 5,
	BucketIncidents:   10,
	BucketDeliveries:  8,
	BucketEscalations: 6,
	BucketServers:     3,
	BucketBoxes:       2,
	BucketMaintenance: 2,
	BucketFailover:    2,
	BucketLocations:   1,
	BucketBanner:      1,
	BucketDomains:     1,
	BucketPush:        1,
	BucketCanary:      1,
	BucketSelf:        1,
}

// SizedConfigs is StreamConfigs and BucketConfigs with a MaxBytes on each:
// maxStore bytes on disk shared by every stream and bucket on file in
// proportion to its share, and maxMemory bytes shared by the streams kept
// in memory (the probe tasks). Together they never ask for more than
// maxStore and maxMemory, so that a server limited to those accepts them.
func SizedConfigs(replicas int, maxStore, maxMemory int64) ([]jetstream.StreamConfig, []jetstream.KeyValueConfig) {
	streams, buckets := StreamConfigs(replicas), BucketConfigs(replicas)
	share := func(name string) int64 {
		if n, ok := storeShares[name]; ok {
			return n
		}
		return 1
	}
	var onFile, inMemory int64
	for _, s := range streams {
		if s.Storage == jetstream.MemoryStorage {
			inMemory += share(s.Name)
		} else {
			onFile += share(s.Name)
		}
	}
	for _, b := range buckets {
		onFile += share(b.Bucket) // every bucket is on file
	}
	for i, s := range streams {
		if s.Storage == jetstream.MemoryStorage {
			streams[i].MaxBytes = maxMemory / inMemory * share(s.Name)
		} else {
			streams[i].MaxBytes = maxStore / onFile * share(s.Name)
		}
	}
	for i, b := range buckets {
		buckets[i].MaxBytes = maxStore / onFile * share(b.Bucket)
	}
	return streams, buckets
}

// StreamConfigs is every stream Tocsin uses, with replicas copies of each
// (1 on one box, 3 on a cluster), bounded in message size and with what to
// do when full; SizedConfigs gives each its size.
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        StreamTasks,
			Description: "Probe tasks, one subject per location; each task is consumed once.",
			Subjects:    []string{SubjectProbeTasks},
			Retention:   jetstream.WorkQueuePolicy,
			// In memory: a task lives seconds and the next slot replaces a
			// lost one, while a file store would write and delete a file
			// block for nearly every task. On a cluster, replicas keep
			// tasks through the loss of one server.
			Storage:     jetstream.MemoryStorage,
			Replicas:    replicas,
			MaxAge:      time.Hour, // a task nobody took in an hour is of no use
			Duplicates:  TaskDedupWindow,
			AllowMsgTTL: true, // each task expires after its own interval
			// Full, the oldest task goes: the next slot replaces it, and a
			// scheduler that cannot publish checks nothing.
			Discard:    jetstream.DiscardOld,
			MaxMsgSize: 64 << 10,
		},
		{
			Name:        StreamSchedule,
			Description: "The scheduled checks of each window, each given to one location; every location's prober reads every window.",
			Subjects:    []string{SubjectProbeSchedule},
			// Limits, not a work queue: every location takes the same
			// message, each through its own consumer.
			Retention: jetstream.LimitsPolicy,
			// In memory, as the tasks: a window is of use for seconds,
			// and the next one replaces a lost one.
			Storage:  jetstream.MemoryStorage,
			Replicas: replicas,
			// Long enough for a prober restarted within minutes to find
			// the windows it had not finished, and no longer: a location
			// gone for good has its consumer fall behind by a window a
			// second, up to this. De-duplication of a window's id covers
			// replicas publishing it and a restarted scheduler
			// publishing it again within TaskGrace.
			MaxAge:     TaskDedupWindow,
			Duplicates: TaskDedupWindow,
			// Full, the oldest window goes: it is long past.
			Discard:    jetstream.DiscardOld,
			MaxMsgSize: 1 << 20,
		},
		{
			Name:        StreamResults,
			Description: "Probe results, one subject per server, and the reports of push servers.",
			Subjects:    []string{SubjectProbeResults},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      24 * time.Hour,
			Duplicates:  10 * time.Minute,
			// Full, the oldest result goes: the verifier judged it long
			// ago, and the newest say what is true now.
			Discard:    jetstream.DiscardOld,
			MaxMsgSize: 64 << 10,
		},
		{
			Name:        StreamEvents,
			Description: "Server and box state changes, false alarms, failover actions incidents and self alerts: the history every downstream service works from.",
			Subjects:    []string{SubjectServerChanges, SubjectFalseAlarms, SubjectServerActions, SubjectBoxChanges, SubjectIncidents, SubjectMaintenances, SubjectCanaries, SubjectSelf},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      400 * 24 * time.Hour, // a year of history for the status page, and some
			Duplicates:  time.Hour,
			// Canary events expire after a few watchdog intervals rather
			// than fill a year of history.
			AllowMsgTTL: true,
			// Full, it refuses what is new rather than lose what happened:
			// the publisher's error says so, and it is retried.
			Discard:    jetstream.DiscardNew,
			MaxMsgSize: MaxEventSize,
		},
		{
			Name:        StreamDeadLetters,
			Description: "Messages a consumer could never handle, with the reason in their headers.",
			Subjects:    []string{SubjectDeadLetters},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      30 * 24 * time.Hour,
			Duplicates:  time.Hour,
			// Full, the oldest goes: a consumer must always be able to set
			// a message aside, or the message blocks its stream.
			Discard: jetstream.DiscardOld,
			// Room for the largest event and the headers that say why it
			// was set aside: NATS's own limit on a message, 1MiB.
			MaxMsgSize: 1 << 20,
		},
	}
}

// BucketConfigs is every key-value bucket Tocsin uses, bounded in value
// size; SizedConfigs gives each its size. A full bucket refuses new keys
// (JetStream's key-value buckets always do), while a key already there can
// still be written: losing the oldest key would lose a server's state or
// the record that a message went out.
func BucketConfigs(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:       BucketServers,
			Description:  "The verifier's state of every server.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
		},
		{
			Bucket:       BucketBoxes,
			Description:  "The verifier's state of every box.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
		},
		{
			Bucket:       BucketLocations,
			Description:  "Prober heartbeats: which locations are live.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 16 << 10,
			TTL:          time.Hour, // clears the keys of probers long gone; liveness is judged by each heartbeat's own TTL
		},
		{
			Bucket:       BucketIncidents,
			Description:  "Incidents, and the ones open in each datacentre.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: MaxEventSize,
			TTL:          400 * 24 * time.Hour, // as long as the events stream keeps the history; an open incident is written far more often
		},
		{
			Bucket:       BucketMaintenance,
			Description:  "Maintenance windows, from the config and started at run time.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
		},
		{
			Bucket:       BucketEscalations,
			Description:  "The escalator's state of each incident, and each step carried out.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
			TTL:          90 * 24 * time.Hour,
		},
		{
			Bucket:       BucketBanner,
			Description:  "The banner on the hosting web pages during a public outage.",
			History:      5,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 64 << 10,
		},
		{
			Bucket:       BucketFailover,
			Description:  "Failover's record of each server: its newest state change, and where it stands in each load balancer.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
		},
		{
			Bucket:       BucketDomains,
			Description:  "The domain watcher's record of each domain: its expiry, its warning, its failed lookups.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 16 << 10,
		},
		{
			Bucket:       BucketPush,
			Description:  "The push service's record of each push server: its last report and its deadline.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 16 << 10,
		},
		{
			Bucket:       BucketCanary,
			Description:  "The canary's progress through each stage of the pipeline, per location, for the watchdog.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 1 << 10,
			TTL:          7 * 24 * time.Hour, // clears the keys of locations long gone
		},
		{
			Bucket:       BucketSelf,
			Description:  "The self-watcher's state, and the notifier's record of each provider.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 256 << 10,
		},
		{
			Bucket:       BucketDeliveries,
			Description:  "One record per notification sent.",
			History:      1,
			Storage:      jetstream.FileStorage,
			Replicas:     replicas,
			MaxValueSize: 64 << 10,
			TTL:          90 * 24 * time.Hour,
		},
	}
}

// Dead-letter headers: why a message was set aside and where it came from.
const (
	HeaderDeadReason   = "Tocsin-Dead-Reason"
	HeaderDeadSubject  = "Tocsin-Dead-Subject"
	HeaderDeadStream   = "Tocsin-Dead-Stream"
	HeaderDeadSequence = "Tocsin-Dead-Sequence"
	HeaderDeadConsumer = "Tocsin-Dead-Consumer"
	// HeaderDeadItem, on one event set aside from a message that held
	// many (a batch of results), is its place in that message, from 0;
	// the data is then that event alone, as if published on its own.
	HeaderDeadItem = "Tocsin-Dead-Item"
)
