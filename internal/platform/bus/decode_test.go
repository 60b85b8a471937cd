package bus_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// The consume loop decodes every message with events.Decode, which reads
// the envelopes Tocsin writes with a scanner of its own and leaves the rest
// to encoding/json. These tests hold the scanner to encoding/json: whatever
// Decode accepts, encoding/json decodes to the same event.

// decodeWithJSON decodes b as Decode did before it had a scanner, into a
// payload of the same type as want's.
func decodeWithJSON(b []byte, want events.Payload) (events.Event, error) {
	var env struct {
		Version int             `json:"v"`
		ID      string          `json:"id"`
		Type    events.Type     `json:"type"`
		Time    time.Time       `json:"time"`
		Source  string          `json:"source"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return events.Event{}, err
	}
	if env.Version != events.Version {
		return events.Event{}, fmt.Errorf("version %d", env.Version)
	}
	p := reflect.New(reflect.TypeOf(want).Elem()).Interface().(events.Payload)
	if err := json.Unmarshal(env.Data, p); err != nil {
		return events.Event{}, err
	}
	ev := events.Event{ID: env.ID, Type: env.Type, Time: env.Time, Source: env.Source, Data: p}
	return ev, ev.Validate()
}

// checkDecode fails if Decode accepts b and encoding/json reads it otherwise.
func checkDecode(t *testing.T, b []byte) (accepted bool) {
	t.Helper()
	got, err := events.Decode("", b)
	if err != nil {
		return false
	}
	want, err := decodeWithJSON(b, got.Data)
	if err != nil {
		t.Fatalf("Decode accepted what encoding/json refuses (%v):\n%s", err, b)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Decode and encoding/json differ (-json +Decode):\n%s\n%s", diff, b)
	}
	return true
}

var decodeT0 = time.Date(2026, 11, 21, 2, 15, 0, 0, time.UTC)

func decodeSamples(t testing.TB) [][]byte {
	evs := []events.Event{
		events.New("mx1/5901675/result", "prober@lon1", decodeT0, &events.ProbeResult{
			Server: "mx1", Location: "lon1", Check: "tcp://mx1.internal:25", Task: "mx1/5901675",
			Purpose: events.PurposeScheduled, Started: decodeT0, LatencyMS: 12.5, OK: false, Reason: "timeout after 10s",
		}),
		events.New("verify/mx1/4/lon1/result", "prober@lon1", decodeT0, &events.ProbeResult{
			Server: "mx1", Location: "lon1", Check: "tcp://mx1.internal:25", Task: "verify/mx1/4/lon1",
			Purpose: events.PurposeRecheck, Correlation: "mx1/4", Started: decodeT0, LatencyMS: 0.25, OK: true,
		}),
		events.New("verify/mx1/4/ams1", "verifier", decodeT0, &events.ProbeTask{
			Server: "mx1", Location: "ams1", Check: "smtp://mx1.internal:25", TimeoutMS: 10000,
			Due: decodeT0, Purpose: events.PurposeOnDemand, Correlation: "mx1/4",
			Options: &events.CheckOptions{StartTLS: true, CertWarnDays: 7, Keyword: "ok"},
		}),
		events.New("mx1/state/4", "verifier", decodeT0, &events.ServerStateChanged{
			Server: "mx1", Box: "mx", From: events.StateSuspect, To: events.StateDown, Since: decodeT0,
			Reason: "timeout", Incident: "20261121-mx1-4", Locations: []string{"lon1", "ams1"},
		}),
		events.New("20261121-mx1-4/opened", "verifier", decodeT0, &events.IncidentOpened{
			Incident: "20261121-mx1-4", Opened: decodeT0, Title: "mx1 is down",
			Servers: []events.AffectedServer{{Server: "mx1", Box: "mx", Check: "tcp://mx1:25", Since: decodeT0, StillUp: []string{}}},
		}),
	}
	var out [][]byte
	for _, ev := range evs {
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	result := string(decodeSamples(t)[0])
	task := string(decodeSamples(t)[2])
	change := string(decodeSamples(t)[3])
	edit := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("sample has no %q", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	tests := []struct {
		name     string
		in       string
		accepted bool
	}{
		{"as written", result, true},
		{"task with options", task, true},
		{"state change with a list", change, true},
		{"answer to a re-check", string(decodeSamples(t)[1]), true},
		{"incident: a list of structs", string(decodeSamples(t)[4]), true},
		{"spaces everywhere", " \n" + strings.NewReplacer(`":`, `" : `, `,"`, ` ,	"`, `{`, `{ `, `}`, ` }`).Replace(result) + "\r\n", true},
		{"keys in another order", edit(result, `"v":1,`, ``)[:len(result)-len(`"v":1,`)-1] + `,"v":1}`, true},
		{"unknown envelope key", edit(result, `"v":1,`, `"v":1,"trace":{"a":[1,"}"]},`), true},
		{"unknown data key", edit(result, `"server":`, `"region":"eu","server":`), true},
		{"key in capitals", edit(result, `"server":`, `"SERVER":`), true},
		{"duplicate key", edit(result, `"server":"mx1",`, `"server":"mx2","server":"mx1",`), true},
		{"escaped string", edit(result, `"reason":"timeout after 10s"`, `"reason":"timeout \"after\" 10s\u00e9"`), true},
		{"escaped key", edit(result, `"server":`, `"serv\u0065r":`), true},
		{"utf-8", edit(result, `"reason":"timeout after 10s"`, `"reason":"délai dépassé"`), true},
		{"invalid utf-8", edit(result, `"reason":"timeout after 10s"`, "\"reason\":\"d\xe9lai\""), true},
		{"null string", edit(result, `"source":"prober@lon1"`, `"source":null`), false},
		{"null list", edit(change, `"locations":["lon1","ams1"]`, `"locations":null`), true},
		{"empty list", edit(change, `"locations":["lon1","ams1"]`, `"locations":[]`), true},
		{"null options", edit(task, `"options":{`, `"opts":{`), true},
		{"latency as exponent", edit(result, `"latency_ms":12.5`, `"latency_ms":1.25e1`), true},
		{"latency negative zero", edit(result, `"latency_ms":12.5`, `"latency_ms":-0`), true},
		{"latency with leading zero", edit(result, `"latency_ms":12.5`, `"latency_ms":012.5`), false},
		{"latency as string", edit(result, `"latency_ms":12.5`, `"latency_ms":"12.5"`), false},
		{"timeout as float", edit(task, `"timeout_ms":10000`, `"timeout_ms":1e4`), false},
		{"timeout too big", edit(task, `"timeout_ms":10000`, `"timeout_ms":99999999999999999999`), false},
		{"version as float", edit(result, `"v":1`, `"v":1.0`), false},
		{"version with leading zero", edit(result, `"v":1`, `"v":01`), false},
		{"time not RFC 3339", edit(result, `"time":"2026-11-21T02:15:00Z"`, `"time":"2026-11-21 02:15:00"`), false},
		{"time with offset", edit(result, `"time":"2026-11-21T02:15:00Z"`, `"time":"2026-11-21T03:15:00+01:00"`), true},
		{"ok as number", edit(result, `"ok":false`, `"ok":0`), false},
		{"trailing comma", edit(result, `"reason":"timeout after 10s"}`, `"reason":"timeout after 10s",}`), false},
		{"trailing data", result + "{}", false},
		{"data as a list", edit(result, `"data":{`, `"data":[{`)[:len(result)+1] + "]}", false},
		{"unbalanced data", result[:len(result)-2], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkDecode(t, []byte(tt.in)); got != tt.accepted {
				t.Errorf("accepted = %v, want %v:\n%s", got, tt.accepted, tt.in)
			}
		})
	}
}

func FuzzDecodeMatchesEncodingJSON(f *testing.F) {
	for _, b := range decodeSamples(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// BenchmarkDecode compares Decode with encoding/json on a probe result,
// the event the verifier decodes most.
func BenchmarkDecode(b *testing.B) {
	data := decodeSamples(b)[0]
	want, err := events.Decode("", data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := events.Decode(want.Subject(), data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeWithJSON(data, want.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
