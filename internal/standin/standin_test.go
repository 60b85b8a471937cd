package standin

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/httpguard"
	"github.com/tocsin-alarm/tocsin/internal/testkit/slowconn"
)

// The stand-ins run in the binary for `tocsin demo`, on a port any user of
// the box can reach: they are bounded like every server Tocsin runs.

func ok(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// TestStandInHugeHeaderRefused: a 64 KiB header, which a server with Go's
// defaults reads whole, gets 431.
func TestStandInHugeHeaderRefused(t *testing.T) {
	s := Start("test", http.HandlerFunc(ok))
	t.Cleanup(s.Close)
	c := slowconn.Dial(t, s.URL, "")
	if got := slowconn.HugeHeader(t, c, "/", 64<<10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 64 KiB header: %d, want 431", got)
	}
	if s.Connections() != 1 {
		t.Errorf("%d connections counted, want 1", s.Connections())
	}
}

// shortLimits are the stand-in's bounds shortened, so that a test sees
// them act in a moment.
var shortLimits = httpguard.Limits{ReadHeaderTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: 500 * time.Millisecond}

// TestStandInIdleConnectionClosed: a keep-alive connection left idle is
// closed at the idle timeout.
func TestStandInIdleConnectionClosed(t *testing.T) {
	s := start("test", http.HandlerFunc(ok), shortLimits)
	t.Cleanup(s.Close)
	c := slowconn.Dial(t, s.URL, "")
	slowconn.IdleClosed(t, c, "/", http.StatusOK, shortLimits.IdleTimeout)
}

// TestStandInSlowHeadersCut: headers sent a byte at a time are cut at the
// header timeout.
func TestStandInSlowHeadersCut(t *testing.T) {
	s := start("test", http.HandlerFunc(ok), shortLimits)
	t.Cleanup(s.Close)
	c := slowconn.Dial(t, s.URL, "")
	request := "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + strings.Repeat("x", 1000) + "\r\n\r\n"
	slowconn.TrickleCut(t, c, request)
}

// TestWait: Wait returns once an arrival makes check true, and a Wait
// the stand-in's closing ends says what it waited for and what it got.
func TestWait(t *testing.T) {
	s := Start("test", http.HandlerFunc(ok))
	t.Cleanup(s.Close)
	var mu sync.Mutex
	n := 0
	count := func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return n >= 2, fmt.Sprintf("%d arrived", n)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait(t.Context(), "2 things", count) }()
	for range 2 {
		mu.Lock()
		n++
		mu.Unlock()
		s.Arrived()
	}
	if err := <-done; err != nil {
		t.Fatalf("Wait: %v", err)
	}

	go func() { done <- s.Wait(t.Context(), "3 things", func() (bool, string) { return false, "2 arrived" }) }()
	s.Close()
	if err := <-done; err == nil || err.Error() != "test: closed while waiting for 3 things; 2 arrived" {
		t.Errorf("Wait on a closed stand-in: %v", err)
	}
}

func TestWaitForN(t *testing.T) {
	s := Start("test", http.HandlerFunc(ok))
	all := func() []string { return []string{"a"} }
	if got, err := WaitForN(t.Context(), s, 1, "call", all, strings.ToUpper); err != nil || len(got) != 1 {
		t.Errorf("WaitForN of 1 = %q, %v", got, err)
	}
	s.Close()
	got, err := WaitForN(t.Context(), s, 2, "call", all, strings.ToUpper)
	if want := "test: closed while waiting for 2 calls; 1 call(s) arrived: [0] A"; err == nil || err.Error() != want || len(got) != 1 {
		t.Errorf("WaitForN of 2 on a closed stand-in = %q, %v; want what arrived and %q", got, err, want)
	}
}

// TestCopies: a test's copy and the stand-in's own share nothing deep.
func TestCopies(t *testing.T) {
	own := []http.Header{{"A": {"1"}}}
	got := Copies(own, http.Header.Clone)
	got[0].Set("A", "2")
	if own[0].Get("A") != "1" {
		t.Errorf("changing the copy changed the stand-in's own: %v", own)
	}
}

func TestArrived(t *testing.T) {
	say := func(s string) string { return strings.ToUpper(s) }
	for _, tt := range []struct {
		items []string
		want  string
	}{
		{nil, "no call arrived"},
		{[]string{"a"}, "1 call(s) arrived: [0] A"},
		{[]string{"a", "b"}, "2 call(s) arrived: [0] A; [1] B"},
	} {
		if got := Arrived(tt.items, "call", say); got != tt.want {
			t.Errorf("Arrived(%q) = %q, want %q", tt.items, got, tt.want)
		}
	}
}

func TestCredential(t *testing.T) {
	for s, want := range map[string]bool{"EAAb+/=": true, "": false, "a b": false, "tok\n": false, "é": false} {
		if got := Credential(s); got != want {
			t.Errorf("Credential(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestKept: what a test reads is what was added, in order, and changing
// it changes nothing kept.
func TestKept(t *testing.T) {
	k := Kept[http.Header]{Deep: http.Header.Clone}
	k.Add(http.Header{"A": {"1"}})
	k.Add(http.Header{"A": {"2"}})
	got := k.All()
	got[0].Set("A", "changed")
	if all := k.All(); len(all) != 2 || all[0].Get("A") != "1" || all[1].Get("A") != "2" {
		t.Errorf("kept %v", all)
	}
}
