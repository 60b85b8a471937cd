package config

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSurfaces: the stream limits default in one place, the proxies are
// parsed once, and the id key is read like any secret.
func TestSurfaces(t *testing.T) {
	cfg, err := Load("testdata/good/minimal.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if sp := cfg.Statuspage; sp.MaxStreams != DefaultMaxStreams || sp.MaxStreamsPerClient != DefaultMaxStreamsPerClient || sp.Proxies != nil || sp.IDKey.IsSet() {
		t.Errorf("defaults: %+v", sp)
	}
	cfg, err = Load("testdata/good/surfaces.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	sp := cfg.Statuspage
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("2001:db8::/48")}
	if diff := cmp.Diff(want, sp.Proxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("statuspage proxies (-want +got):\n%s", diff)
	}
	if got := cfg.Notify.Proxies; len(got) != 1 || got[0] != netip.MustParsePrefix("127.0.0.1/32") {
		t.Errorf("notify proxies %v", got)
	}
	if sp.MaxStreams != 500 || sp.MaxStreamsPerClient != 4 || sp.IDKey.Reveal() != "k3y-for-public-incident-ids-0123456789" {
		t.Errorf("statuspage %+v", sp)
	}
}
