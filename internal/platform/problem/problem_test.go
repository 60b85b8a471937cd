package problem

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestKindOf(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"plain", errors.New("boom"), Internal},
		{"invalid", Errorf(Invalid, "%q is not a name", "a b"), Invalid},
		{"wrapped", fmt.Errorf("post: %w", Errorf(NotFound, "no incident %s", "x")), NotFound},
		{"with a cause", Errorf(Upstream, "ask the DNS: %w", cause), Upstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	err := Errorf(Upstream, "ask the DNS: %w", cause)
	if !errors.Is(err, cause) {
		t.Errorf("%v does not wrap its cause", err)
	}
	if got, want := err.Error(), "ask the DNS: unexpected EOF"; got != want {
		t.Errorf("Error() = %q", got)
	}
}
