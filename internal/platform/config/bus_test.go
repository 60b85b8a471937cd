package config

import (
	"strings"
	"testing"
)

func TestBusSizes(t *testing.T) {
	const base = `
site: {name: S}
locations: [lon1]
boxes: [{id: mx, name: MX, servers: [{id: mx1, check: "tcp://h:25"}]}]
staff: [{name: A, email: a@example.net}]
providers: {smtp: {host: h, from: a@example.net}}
`
	tests := []struct {
		name            string
		bus             string
		store, memory   ByteSize
		wantErrContains string
	}{
		{"defaults", "", DefaultMaxStore, DefaultMaxMemory, ""},
		{"binary units", "bus: {max_store: 8GiB, max_memory: 512MiB}", 8 << 30, 512 << 20, ""},
		{"plain bytes", "bus: {max_store: 104857600}", 100 << 20, DefaultMaxMemory, ""},
		{"a terabyte", "bus: {max_store: 2TiB}", 2 << 40, DefaultMaxMemory, ""},
		{"decimal unit", "bus: {max_store: 8GB}", 0, 0, `"8GB" is not a size`},
		{"too small", "bus: {max_store: 1MiB}", 0, 0, "max_store 1MiB is too small: give the bus at least 64MiB"},
		{"negative", "bus: {max_memory: -1}", 0, 0, `"-1" is not a size`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("bus.yaml", []byte(base+tt.bus+"\n"), testEnv)
			if tt.wantErrContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrContains) {
					t.Fatalf("Parse: %v, want an error with %q", err, tt.wantErrContains)
				}
				if !strings.HasPrefix(err.Error(), "bus.yaml:7: ") {
					t.Errorf("the problem does not say its line: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := (Bus{cfg.Bus.MaxStore, cfg.Bus.MaxMemory}); got != (Bus{tt.store, tt.memory}) {
				t.Errorf("bus = %+v, want %+v", got, Bus{tt.store, tt.memory})
			}
		})
	}
}

// TestLoadBus reads the bus section alone: the rest of the file, secrets
// and all, is not looked at.
func TestLoadBus(t *testing.T) {
	b, err := LoadBus("testdata/good/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if b != (Bus{DefaultMaxStore, DefaultMaxMemory}) {
		t.Errorf("defaults: %+v", b)
	}
	if _, err := LoadBus("testdata/bad/bus.yaml"); err == nil || err.Error() != "testdata/bad/bus.yaml:13: \"8 gigabytes\" is not a size: write a number and a unit, like 512MiB or 8GiB\ntestdata/bad/bus.yaml:14: max_memory 1MiB is too small: give the probe tasks at least 8MiB" {
		t.Errorf("LoadBus(bad) = %v", err)
	}
}
