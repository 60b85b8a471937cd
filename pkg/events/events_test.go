package events

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC)

// samples is one event of every type; the golden files hold their wire form.
func samples() map[string]Event {
	return map[string]Event{
		"probe_task": New("mx1/5901675", "prober@lon1", t0, &ProbeTask{
			Server: "mx1", Location: "lon1", Check: "tcp://mx1.internal:25", TimeoutMS: 10000,
			Slot: 5901675, Due: t0.Add(17 * time.Second), Purpose: PurposeScheduled,
		}),
		"probe_task_on_demand": New("verify/mx1/4/ams1", "verifier", t0, &ProbeTask{
			Server: "mx1", Location: "ams1", Check: "smtp://mx1.internal:25", TimeoutMS: 10000,
			Due: t0, Purpose: PurposeOnDemand, Correlation: "mx1/4",
			Options: &CheckOptions{StartTLS: true, CertWarnDays: 7},
		}),
		"probe_schedule": New(ScheduleID(1795227300, 0), "prober@lon1", t0.Add(-250*time.Millisecond), &ProbeSchedule{
			Start: t0, WindowMS: 1000, Locations: []string{"ams1", "lon1"},
			Checks: []ScheduledCheck{{Server: "mx1", Location: 1, Slot: 5901675, DueMS: 17}, {Server: "web1", Location: 0, Slot: 29534470, DueMS: 998}},
		}),
		"probe_result": New("mx1/5901675/result", "prober@lon1", t0.Add(17*time.Second), &ProbeResult{
			Server: "mx1", Location: "lon1", Check: "tcp://mx1.internal:25", Task: "mx1/5901675",
			Purpose: PurposeScheduled, Started: t0.Add(17 * time.Second), LatencyMS: 10000, OK: false,
			Reason: "timeout after 10s",
		}),
		"probe_result_unanswered": New("mx1/5901675/unanswered", "prober@lon1", t0.Add(20*time.Second), &ProbeResult{
			Server: "mx1", Location: "lon1", Check: "tcp://mx1.internal:25", Task: "mx1/5901675",
			Purpose: PurposeScheduled, Started: t0.Add(17 * time.Second), LatencyMS: 3000, Reason: "no answer after 3s",
			Unanswered: true,
		}),
		"probe_result_batch": New("lon1/Bq3x9Zk1ThHw8vV1tL0a2c/17", "prober@lon1", t0.Add(18*time.Second), &ProbeResultBatch{
			Location: "lon1", Start: t0.Add(17 * time.Second),
			Items: []BatchedItem{
				{Server: "mx1", Task: "mx1/5901675", Check: "tcp://mx1.internal:25", Latency: 1532},
				{Server: "web1", Task: "web1/5901675", Check: "https://web1.internal/", At: 250_113, Latency: 48_210, Warning: "certificate expires in 5 days"},
			},
		}),
		"server_state_changed": New("mx1/state/4", "verifier", t0.Add(20*time.Second), &ServerStateChanged{
			Server: "mx1", Box: "mx", From: StateSuspect, To: StateDown, Since: t0.Add(17 * time.Second),
			Reason: "timeout after 10s", Incident: "20261121-mx1-4", Locations: []string{"lon1"},
		}),
		"false_alarm": New("mx1/false-alarm/2-1795227317000", "verifier", t0.Add(19*time.Second), &FalseAlarm{
			Server: "mx1", Box: "mx", Seen: t0.Add(17 * time.Second), Reason: "connection refused",
			Locations: []string{"nyc1"}, Why: "2 of 2 re-checks succeeded", Asked: 2, OK: 2,
		}),
		"server_action": New("web1/state/4-1795227320000/remove/haproxy-1/attempt-3", "failover", t0.Add(31*time.Second), &ServerAction{
			Server: "web1", Box: "web", Action: ActionRemove, Via: "haproxy", Target: "haproxy /run/haproxy/admin.sock web/web1",
			Outcome: OutcomeRetrying, Attempt: 3, Error: "dial unix /run/haproxy/admin.sock: connect: connection refused",
			FailingSince: t0.Add(21 * time.Second), Alert: true, Change: "web1/state/4-1795227320000",
			Incident: "20261121-web1-4", InPool: []string{"web2"}, At: t0.Add(31 * time.Second),
		}),
		"box_state_changed": New("mx/state/3", "verifier", t0.Add(20*time.Second), &BoxStateChanged{
			Box: "mx", From: BoxOperational, To: BoxDegraded, Since: t0.Add(20 * time.Second),
			Up: []string{"mx2"}, Down: []string{"mx1"},
		}),
		"incident_opened": New("20261121-mx1-4/opened", "verifier", t0.Add(20*time.Second), &IncidentOpened{
			Incident: "20261121-mx1-4", Opened: t0.Add(20 * time.Second), Title: "mx1 (Incoming mail) is down",
			Servers: []AffectedServer{{
				Server: "mx1", Box: "mx", Check: "tcp://mx1.internal:25", Since: t0.Add(17 * time.Second),
				Reason: "timeout after 10s", Locations: []string{"lon1", "ams1", "nyc1"},
				Verification: "confirmed by 2 of 2 re-checks", BoxState: BoxDegraded, StillUp: []string{"mx2"},
			}},
			Severity: SeverityDegraded,
		}),
		"incident_updated": New("20261121-mx1-4/updated/1", "verifier", t0.Add(80*time.Second), &IncidentUpdated{
			Incident: "20261121-mx1-4", Seq: 1, At: t0.Add(80 * time.Second), Opened: t0.Add(20 * time.Second),
			Title: "2 servers down in 2 boxes at DC One",
			Added: []AffectedServer{{
				Server: "web1", Box: "web", Check: "https://web1.internal/", Since: t0.Add(61 * time.Second),
				Reason: "connection refused", Locations: []string{"lon1", "nyc1"},
				Verification: "confirmed by 2 of 2 re-checks", BoxState: BoxDegraded, StillUp: []string{"web2"},
			}},
			Boxes:    []BoxStatus{{Box: "web", State: BoxDegraded, Up: []string{"web2"}}},
			Down:     []string{"mx1", "web1"},
			Severity: SeverityDegraded,
		}),
		"incident_updated_worse": New("20261121-mx1-4/updated/2", "verifier", t0.Add(100*time.Second), &IncidentUpdated{
			Incident: "20261121-mx1-4", Seq: 2, At: t0.Add(100 * time.Second), Opened: t0.Add(20 * time.Second),
			Title: "2 servers of Incoming mail are down",
			Added: []AffectedServer{{
				Server: "mx2", Box: "mx", Check: "tcp://mx2.internal:25", Since: t0.Add(81 * time.Second),
				Reason: "connection refused", Locations: []string{"lon1", "nyc1"},
				Verification: "confirmed by 2 of 2 re-checks", BoxState: BoxDown,
			}},
			Boxes:     []BoxStatus{{Box: "mx", State: BoxDown}},
			Down:      []string{"mx1", "mx2"},
			Withdrawn: []string{"mx3"},
			Severity:  SeverityOutage,
		}),
		"incident_notified": New("20261121-mx1-4/notified/worse-1", "notifier", t0.Add(101*time.Second), &IncidentNotified{
			Incident: "20261121-mx1-4", Step: "worse-1", At: t0.Add(101 * time.Second),
			Severity: SeverityOutage, DownBoxes: []string{"mx"}, Reached: 1,
		}),
		"maintenance_set": New("kernel-0312/set/1", "tocsin@ops1", t0, &MaintenanceSet{
			Maintenance: "kernel-0312", Servers: []string{"mx1", "mx2"}, From: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour),
			Reason: "Kernel upgrade", Public: true, Boxes: []string{"mx"}, By: "alice",
		}),
		"canary_judged": New("canary/29534470/lon1/judged", "verifier", t0.Add(2*time.Second), &CanaryJudged{
			Slot: 29534470, Location: "lon1", Issued: t0, Probed: t0.Add(time.Second), Judged: t0.Add(2 * time.Second),
		}),
		"maintenance_ended": New("kernel-0312/ended", "tocsin@ops1", t0.Add(2*time.Hour), &MaintenanceEnded{
			Maintenance: "kernel-0312", Ended: t0.Add(2 * time.Hour), By: "alice",
		}),
		"self_raised": New("location-lon1-1795227300/raised", "selfwatch", t0.Add(time.Minute), &SelfRaised{
			Alert: "location-lon1-1795227300", Kind: SelfLocation, What: "lon1", Raised: t0.Add(time.Minute), Since: t0.Add(-3 * time.Minute),
			Title: "prober lon1 has not checked anything since 02:12 UTC", Action: "is its host up? tocsin status",
		}),
		"self_cleared": New("location-lon1-1795227300/cleared", "selfwatch", t0.Add(time.Hour), &SelfCleared{
			Alert: "location-lon1-1795227300", Kind: SelfLocation, What: "lon1", Raised: t0.Add(time.Minute), Cleared: t0.Add(time.Hour),
			Title: "prober lon1 has not checked anything since 02:12 UTC",
		}),
		"incident_acknowledged": New("20261121-mx1-4/acknowledged", "notifier", t0.Add(3*time.Minute), &IncidentAcknowledged{
			Incident: "20261121-mx1-4", By: "Alice", Via: AckViaSMS, At: t0.Add(3 * time.Minute),
		}),
		"incident_note": New("20261121-mx1-4/note/1", "tocsin@ops1", t0.Add(5*time.Minute), &IncidentNote{
			Incident: "20261121-mx1-4", Seq: 1, Status: NoteIdentified, Message: "A failed disk on the mail server; it is being replaced.",
			By: "Alice", At: t0.Add(5 * time.Minute),
		}),
		"incident_escalated": New("20261121-mx1-4/escalated/datacentre", "escalator", t0.Add(15*time.Minute), &IncidentEscalated{
			Incident: "20261121-mx1-4", Step: "datacentre", At: t0.Add(15 * time.Minute), To: []string{"dc1"},
		}),
		"push_report": New("backup-nightly/missed/1795227300000", "push", t0.Add(25*time.Hour), &PushReport{
			Server: "backup-nightly", Outcome: PushMissed, At: t0.Add(25 * time.Hour),
			Reason: "no report for 25h (every 24h, grace 1h)",
		}),
		"incident_resolved": New("20261121-mx1-4/resolved", "verifier", t0.Add(time.Hour), &IncidentResolved{
			Incident: "20261121-mx1-4", Opened: t0.Add(20 * time.Second), Resolved: t0.Add(time.Hour),
			Title: "mx1 (Incoming mail) is down", Servers: []string{"mx1", "mx2", "mx3"},
			Severity: SeverityOutage, Withdrawn: []string{"mx3"}, CustomersAffectedMS: 1_200_000,
		}),
	}
}

func TestGolden(t *testing.T) {
	for name, ev := range samples() {
		t.Run(name, func(t *testing.T) {
			got, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, filepath.Join("testdata", "golden", name+".json"), got,
				"wire format changed (run with -update if on purpose)")
			back, err := Decode(ev.Subject(), want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ev, back); diff != "" {
				t.Errorf("decoded golden file differs (-want +got):\n%s", diff)
			}
		})
	}
}

// golden holds got to the golden file at path, first writing it there when
// the test runs with -update, and returns the file's bytes for the caller
// to decode. changed is what a difference means and how to accept it.
func golden(t *testing.T, path string, got []byte, changed string) []byte {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.TrimSuffix(want, []byte("\n"))) {
		t.Errorf("%s:\n got %s\nwant %s", changed, got, want)
	}
	return want
}

// edited marshals ev, and returns its text and a way to change one part of
// that text, which fails t if the part is not there.
func edited(t *testing.T, ev Event) (good string, replace func(old, new string) string) {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	good = string(b)
	return good, func(old, new string) string {
		t.Helper()
		if !strings.Contains(good, old) {
			t.Fatalf("sample has no %q", old)
		}
		return strings.Replace(good, old, new, 1)
	}
}

// refusal is a message on subject that Decode must refuse, saying want.
type refusal struct{ name, subject, in, want string }

func refused(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.subject, []byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%s) succeeded, want error containing %q", tt.in, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	good, replace := edited(t, samples()["probe_result"])
	refused(t, []refusal{
		{"not json", "", "hello", "malformed envelope"},
		{"empty", "", "", "malformed envelope"},
		{"trailing data", "", good + "{}", "after top-level value"},
		{"newer version", "", replace(`"v":1`, `"v":2`), "unsupported envelope version 2"},
		{"unknown type", "", replace(`"type":"probe.result"`, `"type":"probe.weird"`), `unknown event type "probe.weird"`},
		{"missing type", "", replace(`"type":"probe.result"`, `"type":""`), "missing event type"},
		{"missing id", "", replace(`"id":"mx1/5901675/result"`, `"id":""`), "missing id"},
		{"id with space", "", replace(`"id":"mx1/5901675/result"`, `"id":"a b"`), "spaces"},
		{"missing source", "", replace(`"source":"prober@lon1"`, `"source":""`), "missing source"},
		{"data of wrong shape", "", replace(`"ok":false`, `"ok":"no"`), "malformed data"},
		{"null data", "", `{"v":1,"id":"x","type":"probe.result","time":"2026-11-21T02:15:00Z","source":"s","data":null}`, "missing data"},
		{"server with a dot", "", replace(`"server":"mx1"`, `"server":"mx1.internal"`), `server "mx1.internal" must be`},
		{"failure without reason", "", replace(`,"reason":"timeout after 10s"`, ``), "needs a reason"},
		{"unanswered re-check", "", replace(`"purpose":"scheduled"`, `"purpose":"recheck","unanswered":true`), "only a scheduled check"},
		{"unanswered but ok", "", replace(`"ok":false`, `"ok":true,"unanswered":true`), "only a scheduled check"},
		{"wrong subject", "probe.result.mx2.lon1", good, `belongs on "probe.result.mx1.lon1", found on "probe.result.mx2.lon1"`},
		{"another location's subject", "probe.result.mx1.ams1", good, `belongs on "probe.result.mx1.lon1", found on "probe.result.mx1.ams1"`},
	})
}

func TestMarshalRefusesInvalid(t *testing.T) {
	ev := New("x", "verifier", t0, &IncidentOpened{Incident: "i1", Opened: t0, Title: "t"})
	if _, err := ev.Marshal(); err == nil || !strings.Contains(err.Error(), "at least one server") {
		t.Errorf("Marshal of incident without servers: err = %v", err)
	}
}

// FuzzDecode holds Decode to two promises: it never panics, and whatever it
// accepts survives a round trip unchanged.
func FuzzDecode(f *testing.F) {
	for _, ev := range samples() {
		b, err := ev.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := Decode("", b)
		if err != nil {
			return
		}
		again, err := ev.Marshal()
		if err != nil {
			t.Fatalf("accepted event does not marshal: %v", err)
		}
		back, err := Decode(ev.Subject(), again)
		if err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, again)
		}
		// An empty list and a missing one mean the same on the wire.
		if diff := cmp.Diff(ev, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the event (-first +second):\n%s", diff)
		}
	})
}

func TestValidToken(t *testing.T) {
	for s, want := range map[string]bool{
		"mx1": true, "web-2": true, "db_3": true, "A9": true, strings.Repeat("a", 63): true,
		"": false, "-x": false, "_x": false, "mx1.internal": false, "a b": false, "a*": false, "a>": false, strings.Repeat("a", 64): false, "é": false,
	} {
		if got := ValidToken(s); got != want {
			t.Errorf("ValidToken(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 300) // 600 bytes
	got := Clip(long, MaxReason)
	if len(got) > MaxReason || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("Clip gave %d bytes, valid %v: %q", len(got), utf8.ValidString(got), got[len(got)-10:])
	}
	if Clip("connection refused", MaxReason) != "connection refused" {
		t.Error("a short reason was changed")
	}
	r := &ProbeResult{Server: "mx1", Location: "lon1", Task: "t", Started: t0, Reason: long}
	if err := r.Validate(); err == nil {
		t.Error("a 600-byte reason was accepted")
	}
}

func TestSubjectID(t *testing.T) {
	for subject, want := range map[string]string{
		SubjectIncident("20261121-mx1-4", "opened"): "20261121-mx1-4",
		SubjectServerChanged("mx1"):                 "mx1",
		SubjectProbeResult("mx1", "lon1"):           "result",
		"nodots":                                    "nodots",
	} {
		if got := SubjectID(subject); got != want {
			t.Errorf("SubjectID(%q) = %q, want %q", subject, got, want)
		}
	}
}
