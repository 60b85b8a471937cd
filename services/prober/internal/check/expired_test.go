package check

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// expiredCert is a self-signed certificate for 127.0.0.1 that expired an
// hour ago, and a pool that trusts it: trusted, right host, out of date.
func expiredCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "expired on loopback"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-48 * time.Hour),
		NotAfter:              now.Add(-time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestExpiredCertificateFails: a certificate past its date fails the
// check, whether or not expiry warnings are asked for: customers' browsers
// refuse it, so the service is down, not about to be.
func TestExpiredCertificateFails(t *testing.T) {
	cert, pool := expiredCert(t)
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
