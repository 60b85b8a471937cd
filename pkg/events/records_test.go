package events

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recordSamples is one of every record services share through a bucket,
// every field set, so that its golden file names every field.
func recordSamples() map[string]any {
	return map[string]any{
		"server": &ServerRecord{ID: "mx1", State: StateUp, Since: t0.Add(-3 * time.Minute), UpSince: t0.Add(-37 * 24 * time.Hour)},
		"box":    &BoxRecord{State: BoxDegraded, Since: t0},
		"open_incidents": &OpenIncidents{Incidents: []OpenIncident{
			{ID: "20261121-ab12cd", Boxes: []string{"mx", "web"}, LastAdded: t0.Add(time.Minute)},
		}},
		"canary_stage": &CanaryStage{Slot: 29534470, At: t0.Add(time.Second), Since: 29534400},
		"heartbeat":    &Heartbeat{Location: "lon1", Instance: "a1b2c3", Since: t0.Add(-time.Hour), TTLMS: 15000},
		"banner": &Banner{On: true, Message: "Incoming mail is down; we are on it.", Link: "https://status.example.net/",
			Incidents: []string{"20261121-ab12cd"}, Since: t0},
	}
}

// TestRecordGolden holds every shared record to its golden file: a field
// renamed, dropped or added changes the bytes, or leaves a key in the
// golden file that the record no longer reads, and the test fails. Run
// with -update only when every reader and writer changed with it.
func TestRecordGolden(t *testing.T) {
	for name, rec := range recordSamples() {
		t.Run(name, func(t *testing.T) {
			everyFieldSet(t, reflect.ValueOf(rec).Elem(), name)
			got, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			want := golden(t, filepath.Join("testdata", "records", name+".json"), got,
				"stored form changed (run with -update if every reader changed with it)")
			back := reflect.New(reflect.TypeOf(rec).Elem()).Interface()
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(back); err != nil {
				t.Fatalf("the golden file no longer decodes: %v", err)
			}
			if diff := cmp.Diff(rec, back); diff != "" {
				t.Errorf("decoded golden file differs (-want +got):\n%s", diff)
			}
		})
	}
}

// everyFieldSet fails when a sample leaves a field at its zero value: the
// field would be missing from the golden file, and nothing would notice
// it renamed.
func everyFieldSet(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if v.Interface().(time.Time).IsZero() {
				t.Errorf("sample leaves %s zero", path)
			}
			return
		}
		for i := range v.NumField() {
			everyFieldSet(t, v.Field(i), path+"."+v.Type().Field(i).Name)
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("sample leaves %s empty", path)
		}
		for i := range v.Len() {
			everyFieldSet(t, v.Index(i), path)
		}
	default:
		if v.IsZero() {
			t.Errorf("sample leaves %s zero", path)
		}
	}
}

// Records written before this package declared them must still be read:
// the verifier's server record as stored, its working state and all.
func TestStoredServerRecordReads(t *testing.T) {
	stored, err := os.ReadFile(filepath.Join("testdata", "records", "stored", "server.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got ServerRecord
	if err := json.Unmarshal(stored, &got); err != nil {
		t.Fatal(err)
	}
	want := ServerRecord{ID: "mx1", State: StateDown, Since: t0.Add(20 * time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored record read as (-want +got):\n%s", diff)
	}
	stored, err = os.ReadFile(filepath.Join("testdata", "records", "stored", "box.json"))
	if err != nil {
		t.Fatal(err)
	}
	var box BoxRecord
	if err := json.Unmarshal(stored, &box); err != nil {
		t.Fatal(err)
	}
	if want := (BoxRecord{State: BoxDown, Since: t0.Add(20 * time.Second)}); box != want {
		t.Errorf("stored box record read as %+v, want %+v", box, want)
	}
}

func TestKeyOpenIncidents(t *testing.T) {
	for dc, want := range map[string]string{"dc1": "open.dc1", "": "open._"} {
		if got := KeyOpenIncidents(dc); got != want {
			t.Errorf("KeyOpenIncidents(%q) = %q, want %q", dc, got, want)
		}
	}
	if got, want := (Heartbeat{Location: "lon1", Instance: "a"}).Key(), "lon1.a"; got != want {
		t.Errorf("heartbeat key %q, want %q", got, want)
	}
}
