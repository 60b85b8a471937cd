package check

import (
	"slices"
	"testing"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
)

// TestEverySchemeTheConfigAcceptsHasACheck: a check URL that validates but
// has no check behind it would mark a healthy server down.
func TestEverySchemeTheConfigAcceptsHasACheck(t *testing.T) {
	got, want := Schemes(), slices.Clone(config.Schemes)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("checks exist for %v; the config accepts %v", got, want)
	}
}
