package prober

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/internal/testkit/logbuf"
	"github.com/tocsin-alarm/tocsin/internal/testkit/wait"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// stored is every message of the results stream, and the results they hold.
type stored struct {
	messages map[string]int            // subject → messages
	results  map[string][]events.Event // server → its results, in stream order
	tasks    map[string]int            // task → results
	total    int
}

func readResults(t *testing.T, b *bus.Bus) stored {
	t.Helper()
	ctx := context.Background()
	c, err := b.JS.OrderedConsumer(ctx, events.StreamResults, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := stored{messages: map[string]int{}, results: map[string][]events.Event{}, tasks: map[string]int{}}
	batch, err := c.FetchNoWait(10000)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		evs, err := events.DecodeResults(m.Subject(), m.Data())
		if err != nil {
			t.Fatalf("%s: %v", m.Subject(), err)
		}
		got.messages[m.Subject()]++
		for _, ev := range evs {
			r := ev.Data.(*events.ProbeResult)
			got.results[r.Server] = append(got.results[r.Server], ev)
			got.tasks[r.Task]++
			got.total++
		}
	}
	return got
}

func resultsConfig(t *testing.T, url string, servers int) *config.Config {
	t.Helper()
	var y strings.Builder
	y.WriteString("site: {name: Test}\nlocations: [lon1]\nchecks: {interval: 1s, timeout: 500ms}\nstaff: [{name: A, email: a@example.net}]\nproviders: {smtp: {host: 127.0.0.1, port: 2525, from: alarm@example.net, tls: none}}\nboxes:\n  - id: web\n    name: Web\n    servers:\n")
	for i := range servers {
		fmt.Fprintf(&y, "      - {id: web%d, check: %q}\n", i, url)
	}
	y.WriteString("      - {id: down1, check: \"tcp://127.0.0.1:1\"}\n")
	cfg, err := config.Parse("test.yaml", []byte(y.String()), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSuccessesShareMessages: successes arrive in batches, far fewer
// messages than results; a failure arrives on its own, on its server's
// subject; a re-check's answer too; every task has one result.
func TestSuccessesShareMessages(t *testing.T) {
	t.Parallel()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer web.Close()
	const servers = 20
	cfg := resultsConfig(t, web.URL, servers)
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	p, err := New(cfg, Options{Location: "lon1"}, Deps{Bus: srv.Connect(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait.For(t, "three checks of every server", func() bool {
		got := readResults(t, b)
		for i := range servers {
			if len(got.results[fmt.Sprintf("web%d", i)]) < 3 {
				return false
			}
		}
		return len(got.results["down1"]) >= 3
	})
	// A re-check, answered at once on its own.
	recheck := &events.ProbeTask{Server: "web3", Location: "lon1", Check: web.URL, TimeoutMS: 500, Due: time.Now(), Purpose: events.PurposeRecheck, Correlation: "web3/verify-1"}
	if err := b.Publish(context.Background(), events.New("web3/verify-1/lon1/0", "verifier", time.Now(), recheck)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, "the re-check's answer on its own", func() bool {
		c, err := b.JS.Stream(context.Background(), events.StreamResults)
		if err != nil {
			return false
		}
		m, err := c.GetLastMsgForSubject(context.Background(), events.SubjectProbeResult("web3", "lon1"))
		return err == nil && strings.Contains(string(m.Data), `"correlation":"web3/verify-1"`)
	})

	got := readResults(t, b)
	batches := got.messages[events.SubjectProbeResultBatch("lon1")]
	successes := got.total - len(got.results["down1"]) - 1
	if batches == 0 || batches*4 > successes {
		t.Errorf("%d successes came in %d batches: fewer than 4 a message", successes, batches)
	}
	if n, fails := got.messages[events.SubjectProbeResult("down1", "lon1")], len(got.results["down1"]); n != fails {
		t.Errorf("down1's %d failures came in %d messages of its own, want one each", fails, n)
	}
	for i := range servers {
		if n := got.messages[events.SubjectProbeResult(fmt.Sprintf("web%d", i), "lon1")]; n > 0 && i != 3 {
			t.Errorf("web%d had %d successes on its own subject, want them batched", i, n)
		}
	}
	for task, n := range got.tasks {
		if n != 1 {
			t.Errorf("task %s has %d results", task, n)
		}
	}
	// The task of every result stored was acknowledged: none is left.
	wait.For(t, "every task acknowledged", func() bool {
		c, err := b.JS.Consumer(context.Background(), events.StreamTasks, consumerName("lon1"))
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumAckPending+int(ci.NumPending) <= servers+1 // at most the slot in hand
	})
}

// sendSuccesses hands n successes to s, as n tasks' handlers would, and
// returns what each was told.
func sendSuccesses(t *testing.T, s *sender, n int) []<-chan error {
	t.Helper()
	var dones []<-chan error
	at := time.Now()
	for i := range n {
		task := fmt.Sprintf("web%d/%d", i, at.Unix())
		ev := events.New(task+"/result", "prober@lon1", at, &events.ProbeResult{
			Server: fmt.Sprintf("web%d", i), Location: "lon1", Check: "https://web.internal/", Task: task,
			Purpose: events.PurposeScheduled, Started: at, LatencyMS: 1.5, OK: true,
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		err := s.Send(ctx, ev)
		if err == nil {
			t.Fatalf("a success was published at once")
		}
		var d <-chan error
		if d, _ = bus.AckWhenChannel(err); d == nil {
			t.Fatalf("Send = %v, want bus.AckWhen", err)
		}
		dones = append(dones, d)
	}
	return dones
}

func allStored(t *testing.T, dones []<-chan error) {
	t.Helper()
	for i, d := range dones {
		select {
		case err := <-d:
			if err != nil {
				t.Errorf("result %d: %v", i, err)
			}
		case <-time.After(wait.Default):
			t.Fatalf("result %d not stored in %s", i, wait.Default)
		}
	}
}

// TestStoppedProberSendsWhatItGathered: the successes in hand when the
// prober stops are stored before it returns, in one batch.
func TestStoppedProberSendsWhatItGathered(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	s := newSender(b, "lon1", "prober@lon1", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, func(*events.ProbeResult) bool { return false })
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.run(ctx); close(ran) }()
	dones := sendSuccesses(t, s, 5)
	cancel()
	<-ran
	s.wait()
	allStored(t, dones)
	got := readResults(t, b)
	if got.total != 5 || got.messages[events.SubjectProbeResultBatch("lon1")] != 1 {
		t.Errorf("stored %d results in %v, want 5 in one batch", got.total, got.messages)
	}
}

// TestRefusedBatchIsRetried: while JetStream refuses the batch (its stream
// is gone), it waits; once the stream is back it is stored, once.
func TestRefusedBatchIsRetried(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	if err := b.JS.DeleteStream(ctx, events.StreamResults); err != nil {
		t.Fatal(err)
	}
	var log logbuf.Buffer
	s := newSender(b, "lon1", "prober@lon1", slog.New(slog.NewTextHandler(&log, nil)), time.Now, func(*events.ProbeResult) bool { return false })
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.run(rctx)
	dones := sendSuccesses(t, s, 7)
	wait.For(t, "the batch refused and retried", func() bool { return strings.Count(log.String(), "retrying") >= 2 })
	for i, d := range dones {
		select {
		case err := <-d:
			t.Fatalf("result %d told %v while the stream is gone", i, err)
		default:
		}
	}
	if err := b.Ensure(ctx, 1); err != nil {
		t.Fatal(err)
	}
	allStored(t, dones)
	got := readResults(t, b)
	if got.total != 7 || len(got.messages) != 1 {
		t.Errorf("stored %d results in %v, want 7 in one batch", got.total, got.messages)
	}
}

// TestResultNoBatchMayHoldGoesAlone: a result that would make its batch
// invalid (here a task id too long for a batch) is not lost with it: it
// is stored alone.
func TestResultNoBatchMayHoldGoesAlone(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	s := newSender(b, "lon1", "prober@lon1", slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, func(*events.ProbeResult) bool { return false })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	at := time.Now()
	task := "web1/" + strings.Repeat("1", 187)
	err := s.Send(ctx, events.New(task+"/result", "prober@lon1", at, &events.ProbeResult{
		Server: "web1", Location: "lon1", Task: task, Purpose: events.PurposeScheduled, Started: at, OK: true,
	}))
	done, ok := bus.AckWhenChannel(err)
	if !ok {
		t.Fatalf("Send = %v, want bus.AckWhen", err)
	}
	allStored(t, []<-chan error{done})
	got := readResults(t, b)
	if got.total != 1 || got.messages[events.SubjectProbeResult("web1", "lon1")] != 1 {
		t.Errorf("stored %d results in %v, want one alone", got.total, got.messages)
	}
}
