// Package escalator will keep durable deadlines per incident: after the
// datacentre timeout it emails the box's datacentre, after the extended-outage
// timeout it posts to Twitter/X and Facebook and raises the banner on the
// hosting pages, and it cancels pending steps when an incident is
// acknowledged or resolved. Its deadlines are held by JetStream, never by a
// timer that lives only in memory. It has no code in this version; the
// verifier's incident events on incident.> are what it will consume.
package escalator
