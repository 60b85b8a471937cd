package redact

import "testing"

func TestRedact(t *testing.T) {
	tests := []struct{ got, want string }{
		{Email("alice@example.net"), "a…@example.net"},
		{Email("not-an-address"), "…"},
		{Email("@example.net"), "…"},
		{Phone("+447700900001"), "+44…01"},
		{Phone("+44"), "…"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
