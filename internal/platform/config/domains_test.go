package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDomains: the section defaults in one place, and each name is read as
// its registry holds it, lower case and in ASCII.
func TestDomains(t *testing.T) {
	cfg, err := Load("testdata/good/minimal.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := Domains{WarnDays: 30, Every: Duration(12 * time.Hour), RDAPBootstrap: "https://data.iana.org/rdap/dns.json"}
	if diff := cmp.Diff(want, cfg.Domains); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	cfg, err = Load("testdata/good/domains.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want = Domains{
		Names:    []string{"example.org", "example-hosting.com", "xn--bcher-kva.example", "example.co.uk"},
		WarnDays: 45, Every: Duration(6 * time.Hour), RDAPBootstrap: "http://127.0.0.1:8053/dns.json",
	}
	if diff := cmp.Diff(want, cfg.Domains); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
}

func TestRegistered(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		ok         bool
	}{
		{"example.net", "example.net", true},
		{"www.example.net", "example.net", true},
		{"example.co.uk", "example.co.uk", true},
		{"mail.example.co.uk", "example.co.uk", true},
		{"foo.github.io", "github.io", true}, // a private suffix: the .io registry holds github.io
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"a.b.example", "b.example", true}, // a top-level domain the list does not know
		{"co.uk", "", false},
	} {
		got, ok := registered(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("registered(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
