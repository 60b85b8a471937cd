package check

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// stalling accepts connections and never answers.
func stalling(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return l.Addr().String()
}

func TestChecks(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("fine")) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	web := httptest.NewServer(mux)
	defer web.Close()
	tlsWeb := httptest.NewTLSServer(mux)
	defer tlsWeb.Close()

	trusting := New(tlsWeb.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs)
	systemRoots := New(nil)
	closed, stall := closedPort(t), stalling(t)

	tests := []struct {
		name    string
		runner  *Runner
		target  string
		timeout time.Duration
		ok      bool
		reason  string
	}{
		// Timeouts are generous where the outcome is not a timeout: on a
		// busy machine the first TLS handshake, reading the system's
		// roots, can take over a second.
		{"http ok", trusting, web.URL + "/ok", 5 * time.Second, true, ""},
		{"http redirect followed", trusting, web.URL + "/moved", 5 * time.Second, true, ""},
		{"http redirect loop", trusting, web.URL + "/loop", 5 * time.Second, false, "more than 5 redirects"},
		{"http 503", trusting, web.URL + "/broken", 5 * time.Second, false, "expected a 2xx or 3xx status, got 503 Service Unavailable"},
		{"http refused", trusting, "http://" + closed + "/", 5 * time.Second, false, "connection refused"},
		{"http stalls", trusting, "http://" + stall + "/", 200 * time.Millisecond, false, "timeout after 200ms"},
		{"https ok", trusting, tlsWeb.URL + "/ok", 5 * time.Second, true, ""},
		{"https untrusted certificate", systemRoots, tlsWeb.URL + "/ok", 5 * time.Second, false, "certificate signed by an unknown authority"},
		{"https wrong host", trusting, strings.Replace(tlsWeb.URL, "127.0.0.1", "localhost", 1) + "/ok", 5 * time.Second, false, "certificate is not valid for this host"},
		{"https stalls in handshake", trusting, "https://" + stall + "/", 200 * time.Millisecond, false, "timeout after 200ms"},
		{"tcp ok", trusting, "tcp://" + web.Listener.Addr().String(), 5 * time.Second, true, ""},
		{"tcp refused", trusting, "tcp://" + closed, 5 * time.Second, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.runner.Run(context.Background(), Spec{URL: tt.target, Timeout: tt.timeout})
			if got.OK != tt.ok || !strings.HasPrefix(got.Reason, tt.reason) {
				t.Errorf("Run(%s) = ok %v %q, want ok %v %q", tt.target, got.OK, got.Reason, tt.ok, tt.reason)
			}
			if got.Latency <= 0 || got.Latency > tt.timeout+time.Second {
				t.Errorf("latency %v for a %v timeout", got.Latency, tt.timeout)
			}
		})
	}
}

func TestWithSource(t *testing.T) {
	var from string
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ = net.SplitHostPort(r.RemoteAddr)
	}))
	defer web.Close()
	r := New(nil, WithSource(net.ParseIP("127.0.0.2")))
	if o := r.Run(context.Background(), Spec{URL: web.URL, Timeout: time.Second}); !o.OK {
		t.Fatalf("check failed: %s", o.Reason)
	}
	if from != "127.0.0.2" {
		t.Errorf("the check came from %s, want 127.0.0.2", from)
	}
}
