package servertest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHAProxy(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from web1") }))
	defer web.Close()
	h := StartHAProxy(t, HAProxyOptions{Servers: []HAProxyServer{{Name: "web1", Addr: web.Listener.Addr().String()}}})

	if got := h.Answers(t, 2); got["hello from web1"] != 2 {
		t.Errorf("through the frontend: %v", got)
	}

	c, err := net.DialTimeout("unix", h.Socket, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "show servers state "+h.Backend+"\n")
	state, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(state), " web1 ") {
		t.Errorf("show servers state does not list web1:\n%s", state)
	}
}
