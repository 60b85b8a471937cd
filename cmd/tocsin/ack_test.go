package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

func TestAckCommand(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	ctx := context.Background()
	ikv, _ := b.KV(ctx, events.BucketIncidents)
	dkv, _ := b.KV(ctx, events.BucketDeliveries)
	if _, err := ikv.Put(ctx, "20261121-k3f9x2", []byte(`{"id":"20261121-k3f9x2"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := dkv.Put(ctx, "code.k3f9x2", []byte("20261121-k3f9x2")); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "bob", k == "USER" }
	ack := func(args ...string) (int, string) {
		code, out, errs := runClocked(ctx, cmdAck, env, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), args...)
		return code, out + errs
	}
	if code, out := ack("--nats", srv.URL, "K3F9X2"); code != 0 || !strings.Contains(out, "incident 20261121-k3f9x2 acknowledged by bob") {
		t.Errorf("ack by code: %d %s", code, out)
	}
	if code, out := ack("--nats", srv.URL, "--by", "alice", "20261121-k3f9x2"); code != 0 {
		t.Errorf("ack by id: %d %s", code, out)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--nats", srv.URL, "20261121-nope00"}, 1, "no incident 20261121-nope00"},
		{[]string{"--nats", srv.URL, "zzzz"}, 1, `no incident with the code "zzzz" was paged`},
		{[]string{"--nats", srv.URL}, 2, "usage: tocsin ack"},
	} {
		if code, out := ack(tt.args...); code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("%v: %d %q, want %d %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"incident.*.acknowledged"}})
	if err != nil {
		t.Fatal(err)
	}
	ev := bustest.Next(t, c, 2*time.Second, "no acknowledgement")
	if a := ev.Data.(*events.IncidentAcknowledged); a.By != "bob" || a.Via != events.AckViaCLI {
		t.Errorf("acknowledgement %+v", a)
	}
	if info, _ := c.Info(ctx); info.NumPending != 0 {
		t.Errorf("%d more acknowledgements stored: acknowledging twice must store one", info.NumPending)
	}
}

func TestIncidentUpdateCommand(t *testing.T) {
	srv := bustest.Start(t)
	b := srv.Connect(t, nil)
	ctx := context.Background()
	ikv, _ := b.KV(ctx, events.BucketIncidents)
	if _, err := ikv.Put(ctx, "20261121-k3f9x2", []byte(`{"id":"20261121-k3f9x2"}`)); err != nil {
		t.Fatal(err)
	}
	env := func(k string) (string, bool) { return "alice", k == "USER" }
	update := func(args ...string) (int, string) {
		code, out, errs := runClocked(ctx, cmdIncident, env, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC), args...)
		return code, out + errs
	}
	if code, out := update("update", "20261121-k3f9x2", "--nats", srv.URL, "--status", "identified", "--message", "A failed disk; replacing it."); code != 0 || !strings.Contains(out, "update 1 to incident 20261121-k3f9x2 posted") {
		t.Errorf("first update: %d %s", code, out)
	}
	if code, out := update("update", "--nats", srv.URL, "--status", "monitoring", "--message", "Back; watching.", "20261121-k3f9x2"); code != 0 || !strings.Contains(out, "update 2") {
		t.Errorf("second update: %d %s", code, out)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"update", "20261121-k3f9x2", "--nats", srv.URL, "--status", "fixed", "--message", "x"}, 2, `unknown status "fixed"`},
		{[]string{"update", "20261121-k3f9x2", "--nats", srv.URL}, 2, "give the incident and --message"},
		{[]string{"close"}, 2, "usage: tocsin incident update"},
	} {
		if code, out := update(tt.args...); code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("%v: %d %q, want %d %q", tt.args, code, out, tt.code, tt.want)
		}
	}
	c, err := b.JS.OrderedConsumer(ctx, events.StreamEvents, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"incident.*.note"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		ev := bustest.Next(t, c, 2*time.Second, fmt.Sprintf("notes so far %q", got))
		n := ev.Data.(*events.IncidentNote)
		got = append(got, fmt.Sprintf("%d %s %s %s", n.Seq, n.Status, n.By, n.Message))
	}
	if want := "1 identified alice A failed disk; replacing it.|2 monitoring alice Back; watching."; strings.Join(got, "|") != want {
		t.Errorf("notes %q, want %q", got, want)
	}
}

// TestAckCodeLookupSaysTheRealError: a code the bus could not look up is
// reported as the failure it was, not as a code that was never paged.
func TestAckCodeLookupSaysTheRealError(t *testing.T) {
	b := bustest.New(t)
	kv, err := b.KV(context.Background(), events.BucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := incidentOfCode(gone, kv, "k3f9x2"); err == nil || strings.Contains(err.Error(), "was paged") || !strings.Contains(err.Error(), "canceled") {
		t.Errorf("a lookup with no time left: %v; want the cancellation, not \"not paged\"", err)
	}
	for _, code := range []string{"k3f9x2", "a*b"} {
		if _, err := incidentOfCode(context.Background(), kv, code); err == nil || !strings.Contains(err.Error(), "was paged") {
			t.Errorf("%q, never paged: %v", code, err)
		}
	}
}
