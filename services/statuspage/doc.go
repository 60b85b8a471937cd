// Package statuspage will be the public face of Tocsin: server-rendered HTML
// that works without JavaScript, live updates over Server-Sent Events, a JSON
// API compatible with the public Statuspage v2 API, an Atom feed and the
// banner script for the hosting pages. It has no code in this version; the
// server state changes on server.*.changed and the incidents on incident.>
// are what it will serve from.
package statuspage
