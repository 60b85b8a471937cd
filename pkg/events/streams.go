package events

import (
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

// SubjectProbeResult is where the results for one server go.
func SubjectProbeResult(server string) string { return "probe.result." + server }

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
)

// TaskDedupWindow is how long JetStream remembers a task id. Scheduler
// replicas publish the same slot within seconds of each other, and a
// restarted scheduler republishes only slots due within TaskGrace, so this
// window covers both with room to spare.
const TaskDedupWindow = 5 * time.Minute

// TaskGrace is how late a scheduler may still publish a slot it finds due.
const TaskGrace = time.Minute

// StreamConfigs is every stream Tocsin uses, with replicas copies of each
// (1 on one box, 3 on a cluster).
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
		},
		{
			Name:        StreamResults,
			Description: "Probe results, one subject per server.",
			Subjects:    []string{SubjectProbeResults},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      24 * time.Hour,
			Duplicates:  10 * time.Minute,
		},
		{
			Name:        StreamEvents,
			Description: "Server and box state changes, false alarms, failover actions and incidents: the history every downstream service works from.",
			Subjects:    []string{SubjectServerChanges, SubjectFalseAlarms, SubjectServerActions, SubjectBoxChanges, SubjectIncidents, SubjectMaintenances},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			MaxAge:      400 * 24 * time.Hour, // a year of history for the status page, and some
			Duplicates:  time.Hour,
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
		},
	}
}

// BucketConfigs is every key-value bucket Tocsin uses.
func BucketConfigs(replicas int) []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{
			Bucket:      BucketServers,
			Description: "The verifier's state of every server.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		},
		{
			Bucket:      BucketBoxes,
			Description: "The verifier's state of every box.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		},
		{
			Bucket:      BucketLocations,
			Description: "Prober heartbeats: which locations are live.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			TTL:         time.Hour, // clears the keys of probers long gone; liveness is judged by each heartbeat's own TTL
		},
		{
			Bucket:      BucketIncidents,
			Description: "Incidents, and the ones open in each datacentre.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			TTL:         400 * 24 * time.Hour, // as long as the events stream keeps the history; an open incident is written far more often
		},
		{
			Bucket:      BucketMaintenance,
			Description: "Maintenance windows, from the config and started at run time.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		},
		{
			Bucket:      BucketEscalations,
			Description: "The escalator's state of each incident, and each step carried out.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			TTL:         90 * 24 * time.Hour,
		},
		{
			Bucket:      BucketBanner,
			Description: "The banner on the hosting web pages during a public outage.",
			History:     5,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		},
		{
			Bucket:      BucketFailover,
			Description: "Failover's record of each server: its newest state change, and where it stands in each load balancer.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		},
		{
			Bucket:      BucketDeliveries,
			Description: "One record per notification sent.",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			TTL:         90 * 24 * time.Hour,
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
)
