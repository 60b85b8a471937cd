package haproxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
	"github.com/tocsin-alarm/tocsin/services/failover/internal/haproxy"
)

func named(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
}

func TestAgainstHAProxy(t *testing.T) {
	web1, web2 := named("web1"), named("web2")
	defer web1.Close()
	defer web2.Close()
	h := servertest.StartHAProxy(t, servertest.HAProxyOptions{Backend: "web", Servers: []servertest.HAProxyServer{
		{Name: "web1", Addr: web1.Listener.Addr().String()},
		{Name: "web2", Addr: web2.Listener.Addr().String()},
	}})
	c := haproxy.New(h.Socket, 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	servers, err := c.Servers(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range servers {
		names = append(names, s.Name)
		if !s.Serving() || !s.Is(haproxy.Ready) || s.InMaint() {
			t.Errorf("%s at start: %+v, want ready and serving", s.Name, s)
		}
	}
	if diff := cmp.Diff([]string{"web1", "web2"}, names); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}

	if err := c.SetState(ctx, "web", "web1", haproxy.Maint); err != nil {
		t.Fatal(err)
	}
	s, err := c.Server(ctx, "web", "web1")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Is(haproxy.Maint) || s.Serving() || s.Is(haproxy.Ready) {
		t.Errorf("web1 after maint: %+v", s)
	}
	if got := h.Answers(t, 6); got["web2"] != 6 {
		t.Errorf("with web1 in maintenance the frontend was answered by %v, want web2 only", got)
	}
	// Setting a state twice is harmless.
	if err := c.SetState(ctx, "web", "web1", haproxy.Maint); err != nil {
		t.Fatal(err)
	}
	if err := c.SetState(ctx, "web", "web1", haproxy.Ready); err != nil {
		t.Fatal(err)
	}
	if s, err = c.Server(ctx, "web", "web1"); err != nil || !s.Is(haproxy.Ready) || !s.Serving() {
		t.Errorf("web1 after ready: %+v, %v", s, err)
	}
	if got := h.Answers(t, 6); got["web1"] != 3 || got["web2"] != 3 {
		t.Errorf("with both ready the frontend was answered by %v, want 3 each", got)
	}

	for _, tt := range []struct{ name, backend, server, want string }{
		{"unknown server", "web", "web9", "No such server"},
		{"unknown backend", "nope", "web1", "No such backend"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := c.SetState(ctx, tt.backend, tt.server, haproxy.Maint)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !bus.IsPermanent(err) {
				t.Errorf("SetState = %v, want a permanent error saying %q", err, tt.want)
			}
		})
	}
	if _, err := c.Servers(ctx, "nope"); err == nil || !bus.IsPermanent(err) {
		t.Errorf("Servers of an unknown backend = %v, want a permanent error", err)
	}
	if _, err := c.Server(ctx, "web", "web9"); err == nil || !bus.IsPermanent(err) {
		t.Errorf("Server of an unknown server = %v, want a permanent error", err)
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	t.Run("no socket", func(t *testing.T) {
		c := haproxy.New(filepath.Join(t.TempDir(), "none.sock"), time.Second)
		if err := c.SetState(ctx, "web", "web1", haproxy.Maint); err == nil || bus.IsPermanent(err) {
			t.Errorf("SetState = %v, want an error worth a retry", err)
		}
	})
	t.Run("no answer", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close() // holds the connection, says nothing
			}
		}()
		c := haproxy.New(l.Addr().String(), 200*time.Millisecond)
		start := time.Now()
		_, err = c.Servers(ctx, "web")
		if err == nil || bus.IsPermanent(err) || !strings.Contains(err.Error(), "no answer within 200ms") {
			t.Errorf("Servers = %v, want a timeout worth a retry", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("took %s, want about 200ms", d)
		}
	})
}

func TestParseServersState(t *testing.T) {
	const answer = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 web 1 web1 127.0.0.1 2 1 1 1 12 1 0 0 0 0 0 0 - 8081 - 0 0 - - 0
3 web 2 web2 127.0.0.1 0 0 1 1 3 6 3 0 6 0 0 0 - 8082 - 0 0 - - 0
3 web 3 web3 127.0.0.1 2 8 1 1 3 6 3 0 6 0 0 0 - 8083 - 0 0 - - 0

`
	got, err := haproxy.ParseServersState(answer)
	if err != nil {
		t.Fatal(err)
	}
	want := []haproxy.Server{
		{Backend: "web", Name: "web1", Addr: "127.0.0.1", OpState: 2, AdminState: 1},
		{Backend: "web", Name: "web2", Addr: "127.0.0.1", OpState: 0, AdminState: 0},
		{Backend: "web", Name: "web3", Addr: "127.0.0.1", OpState: 2, AdminState: 8},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for i, serving := range []bool{false, false, false} {
		if got[i].Serving() != serving {
			t.Errorf("%s serving = %v", got[i].Name, !serving)
		}
	}
	if !got[0].Is(haproxy.Maint) || !got[2].Is(haproxy.Drain) || !got[1].Is(haproxy.Ready) {
		t.Errorf("states misread: %+v", got)
	}
	if _, err := haproxy.ParseServersState("Can't find backend.\n"); err == nil || !bus.IsPermanent(err) {
		t.Errorf("an unknown backend's answer: %v, want a permanent error", err)
	}
}
