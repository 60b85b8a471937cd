package check

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/standin"
)

// TestExpiredCertificateFails: a certificate past its date fails the
// check, whether or not expiry warnings are asked for: customers' browsers
// refuse it, so the service is down, not about to be.
func TestExpiredCertificateFails(t *testing.T) {
	// Trusted, for the right host, out of date since an hour ago.
	now := time.Now()
	cert, pool, err := standin.SelfSigned("expired on loopback", now.Add(-48*time.Hour), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	r := New(pool)
	for _, days := range []int{0, 14} {
		got := r.Run(context.Background(), Spec{URL: srv.URL + "/", Timeout: 5 * time.Second, CertWarnDays: days})
		if got.OK || got.Warning != "" || !strings.HasPrefix(got.Reason, "certificate has expired") {
			t.Errorf("cert_warn_days %d: ok %v, warning %q, reason %q; want a failure saying the certificate expired", days, got.OK, got.Warning, got.Reason)
		}
	}
}
