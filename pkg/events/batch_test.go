package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// batchOf is a batch of n successes of lon1, as a prober builds one.
func batchOf(t testing.TB, n int) (Event, []*ProbeResult) {
	t.Helper()
	start := t0.Add(17 * time.Second)
	b := &ProbeResultBatch{Location: "lon1", Start: start}
	var rs []*ProbeResult
	for i := range n {
		r := &ProbeResult{
			Server: fmt.Sprintf("web%d", i), Location: "lon1", Check: fmt.Sprintf("https://web%d.internal/", i),
			Task: fmt.Sprintf("web%d/5901675", i), Purpose: PurposeScheduled,
			Started: start.Add(time.Duration(i) * 1234567 * time.Nanosecond).Truncate(time.Microsecond), LatencyMS: 12.345, OK: true,
		}
		it, ok := Item(r, start)
		if !ok {
			t.Fatalf("result %d cannot be batched", i)
		}
		b.Items = append(b.Items, it)
		rs = append(rs, r)
	}
	return New("lon1/x/1", "prober@lon1", start, b), rs
}

func TestBatchTakenApart(t *testing.T) {
	ev, want := batchOf(t, 3)
	want[1].Warning = "certificate expires in 5 days"
	ev.Data.(*ProbeResultBatch).Items[1].Warning = want[1].Warning
	data, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, ok := decodeFast(ev.Subject(), data)
	if !ok {
		t.Fatalf("the fast decoder refused a batch: %s", data)
	}
	slow, err := decode(ev.Subject(), data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(slow, back); diff != "" {
		t.Errorf("fast and general decoders differ (-general +fast):\n%s", diff)
	}
	got, err := Results(back)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d", len(got), len(want))
	}
	for i, ev := range got {
		if diff := cmp.Diff(want[i], ev.Data); diff != "" {
			t.Errorf("result %d (-sent +taken apart):\n%s", i, diff)
		}
		if ev.ID != want[i].Task+"/result" || ev.Subject() != SubjectProbeResult(want[i].Server, "lon1") || ev.Source != "prober@lon1" {
			t.Errorf("result %d: id %q subject %q source %q", i, ev.ID, ev.Subject(), ev.Source)
		}
	}
}

func TestBatchItemOnlyForScheduledSuccesses(t *testing.T) {
	ok := ProbeResult{Server: "mx1", Location: "lon1", Task: "t", Purpose: PurposeScheduled, Started: t0, OK: true}
	for name, change := range map[string]func(*ProbeResult){
		"failure":    func(r *ProbeResult) { r.OK, r.Reason = false, "connection refused" },
		"unanswered": func(r *ProbeResult) { r.OK, r.Unanswered, r.Reason = false, true, "no answer after 3s" },
		"re-check":   func(r *ProbeResult) { r.Purpose, r.Correlation = PurposeRecheck, "mx1/4" },
		"on demand":  func(r *ProbeResult) { r.Purpose = PurposeOnDemand },
		"canary":     func(r *ProbeResult) { r.Purpose = PurposeCanary },
	} {
		r := ok
		change(&r)
		if _, batched := Item(&r, t0); batched {
			t.Errorf("a %s was batched", name)
		}
	}
	if _, batched := Item(&ok, t0); !batched {
		t.Error("a scheduled success was not batched")
	}
}

func TestBatchRefused(t *testing.T) {
	ev, _ := batchOf(t, 2)
	good, replace := edited(t, ev)
	big, _ := batchOf(t, MaxBatchResults+1)
	tooMany, _ := json.Marshal(map[string]any{"v": 1, "id": "x", "type": TypeProbeResultBatch, "time": t0, "source": "s", "data": big.Data})
	heavy, _ := batchOf(t, 200)
	for i := range heavy.Data.(*ProbeResultBatch).Items {
		heavy.Data.(*ProbeResultBatch).Items[i].Warning = strings.Repeat("<", MaxReason)
	}
	tooBig, _ := json.Marshal(map[string]any{"v": 1, "id": "x", "type": TypeProbeResultBatch, "time": t0, "source": "s", "data": heavy.Data})
	refused(t, []refusal{
		{"another location's subject", SubjectProbeResultBatch("ams1"), good, `belongs on "probe.result._batch.lon1"`},
		{"a server's subject", SubjectProbeResult("web0", "lon1"), good, `belongs on "probe.result._batch.lon1"`},
		{"no results", "", replace(good[strings.Index(good, `"results":`):len(good)-2], `"results":[]`), "no results"},
		{"too many", "", string(tooMany), "more than the 500"},
		{"too big", "", string(tooBig), "bytes, more than"},
		{"server with a dot", "", replace(`"s":"web1"`, `"s":"web1.internal"`), `result 1: server "web1.internal"`},
		{"the batch token as a server", "", replace(`"s":"web1"`, `"s":"_batch"`), `result 1: server "_batch"`},
		{"started before the batch", "", replace(`"at":0`, `"at":-1`), "result 0: at -1µs"},
		{"negative latency", "", replace(`"l":12345`, `"l":-5`), "latency -5µs"},
		{"task with a space", "", replace(`"t":"web0/5901675"`, `"t":"web0 5901675"`), "spaces"},
		{"missing task", "", replace(`"t":"web0/5901675"`, `"t":""`), "missing task"},
		{"bad location", "", replace(`"location":"lon1"`, `"location":"lon.1"`), `location "lon.1"`},
	})
}

// TestBatchBuiltToSizeFits: a batch whose items' Size add up to at most
// MaxBatchBytes encodes within the results stream's message limit, however
// its text must be escaped.
func TestBatchBuiltToSizeFits(t *testing.T) {
	ev, _ := batchOf(t, 1)
	b := ev.Data.(*ProbeResultBatch)
	it := b.Items[0]
	it.Warning = strings.Repeat("\x01<é\"", MaxReason/5)
	it.Task = strings.Repeat("é", maxTask/2)
	b.Items = nil
	size := 0
	for size+it.Size() <= MaxBatchBytes {
		b.Items = append(b.Items, it)
		size += it.Size()
	}
	data, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 64<<10-1024 {
		t.Errorf("a batch built to its bound is %d bytes: too close to the stream's 64 KiB", len(data))
	}
}

// BenchmarkDecodeResultBatch compares what one result costs to decode:
// alone in its envelope, in a batch of plain ProbeResult JSON, and in a
// compact batch taken apart into results.
func BenchmarkDecodeResultBatch(b *testing.B) {
	const n = 200
	ev, rs := batchOf(b, n)
	compact, err := ev.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	pb := plainBatch{Location: "lon1"}
	var singles [][]byte
	for _, r := range rs {
		pb.Results = append(pb.Results, *r)
		one, err := New(r.Task+"/result", "prober@lon1", r.Started, r).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		singles = append(singles, one)
	}
	plain, _ := json.Marshal(pb)
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			for i, m := range singles {
				if _, err := Decode(SubjectProbeResult(rs[i].Server, "lon1"), m); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/result")
		b.ReportMetric(float64(len(singles[0])), "bytes/result")
	})
	b.Run("plain-batch", func(b *testing.B) {
		for b.Loop() {
			var p plainBatch
			if !decodePayload(plain, &p) {
				b.Fatal("the fast decoder refused the plain batch")
			}
			for i := range p.Results {
				if err := p.Results[i].Validate(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/result")
		b.ReportMetric(float64(len(plain))/n, "bytes/result")
	})
	b.Run("compact-batch", func(b *testing.B) {
		for b.Loop() {
			ev, err := Decode(ev.Subject(), compact)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Results(ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/result")
		b.ReportMetric(float64(len(compact))/n, "bytes/result")
	})
}

// plainBatch is a batch as plain ProbeResult JSON, for the benchmark.
type plainBatch struct {
	Location string        `json:"location"`
	Results  []ProbeResult `json:"results"`
}

func (*plainBatch) EventType() Type { return "bench.plain_batch" }
func (*plainBatch) Subject() string { return "bench" }
func (*plainBatch) Validate() error { return nil }
