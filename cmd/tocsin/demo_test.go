package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs "tocsin demo" with short intervals until an outage has been
// emailed about and resolved.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errs := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--interval", "1s", "--outage-every", "1h", "--outage-for", "4s"}, out, errs, testEnv)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "RESOLVED:") {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d early:\n%s\n%s", code, out, errs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no resolved email within a minute:\n%s\n%s", out, errs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exited %d:\n%s", code, errs)
	}
	got := out.String()
	for _, want := range []string{"14 servers in 7 boxes", "stops answering", "→ suspect", "→ down", "email to alice@demo.invalid", "DOWN:", "answers again", "down → up", "box "} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
}
