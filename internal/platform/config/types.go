package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "30s", "5m" or "1h30m".
type Duration time.Duration

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML reports a bad value as a type error so that decoding goes on
// and every problem in the file is reported at once.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration: write a number and a unit, like 30s, 5m or 1h", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// Secret is a password or token read from the environment or a file. It
// prints, logs and marshals as "[redacted]" so that it cannot leak by accident.
type Secret struct{ value string }

// NewSecret wraps a value.
func NewSecret(v string) Secret { return Secret{v} }

// Reveal is the secret itself, for the one call that needs it.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.value != "" }

func (s Secret) String() string                { return "[redacted]" }
func (s Secret) GoString() string              { return "[redacted]" }
func (s Secret) LogValue() slog.Value          { return slog.StringValue("[redacted]") }
func (s Secret) MarshalJSON() ([]byte, error)  { return json.Marshal("[redacted]") }
func (s Secret) MarshalText() ([]byte, error)  { return []byte("[redacted]"), nil }
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, "[redacted]") }
