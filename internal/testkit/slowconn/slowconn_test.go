package slowconn

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTrickleAndClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The server reads three bytes and hangs up.
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.ReadFull(c, make([]byte, 3))
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sent := Trickle(c, "a request far too long to go through")
	if took := ClosedByServer(t, c, 10*time.Second); took < 2*Pace {
		t.Errorf("closed after %s, before three bytes could be paced out", took)
	}
	if n := <-sent; n >= len("a request far too long to go through") {
		t.Errorf("%d bytes went through a closed connection", n)
	}
}

func TestHugeHeader(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.MaxHeaderBytes = 1 << 10 // and Go's 4 KiB of slack
	srv.Start()
	t.Cleanup(srv.Close)
	if got := HugeHeader(t, Dial(t, srv.URL, ""), "/", 64<<10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 64 KiB header: %d, want 431", got)
	}
	if got := HugeHeader(t, Dial(t, srv.URL, "127.0.0.1"), "/", 100); got != http.StatusOK {
		t.Errorf("a 100-byte header: %d, want 200", got)
	}
}
