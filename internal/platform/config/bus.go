package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Bus bounds what the NATS JetStream bus keeps, so that a full disk or a
// flood of messages never stops every write at once: each stream and
// bucket gets its share of the room, and decides for itself what happens
// when it is full (see docs/security.md).
type Bus struct {
	// MaxStore is the disk every stream and bucket kept on file shares.
	MaxStore ByteSize `yaml:"max_store"`
	// MaxMemory is the memory of the windows of scheduled checks and the
	// probe tasks waiting to be run, half each.
	MaxMemory ByteSize `yaml:"max_memory"`
}

// The least room the bus may be given: below, a day of results for a
// small fleet no longer fits.
const (
	minMaxStore  = 64 << 20
	minMaxMemory = 8 << 20
)

// ByteSize is a number of bytes, written with a binary unit ("512MiB",
// "8GiB") or as a plain number of bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	size   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}}

// UnmarshalYAML reports a bad value as a type error so that decoding goes on
// and every problem in the file is reported at once.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	bad := &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a size: write a number and a unit, like 512MiB or 8GiB", n.Line, n.Value)}}
	if n.Kind != yaml.ScalarNode {
		return bad
	}
	s, unit := strings.TrimSpace(n.Value), int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(num), u.size
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/unit {
		return bad
	}
	*b = ByteSize(v * unit)
	return nil
}

func (b ByteSize) String() string {
	for i := len(byteUnits) - 1; i >= 0; i-- {
		if u := byteUnits[i]; int64(b) >= u.size && int64(b)%u.size == 0 {
			return strconv.FormatInt(int64(b)/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

func (v *validator) bus(b *Bus) {
	if b.MaxStore < minMaxStore {
		v.at(p("bus", "max_store"), "max_store %s is too small: give the bus at least %s", b.MaxStore, ByteSize(minMaxStore))
	}
	if b.MaxMemory < minMaxMemory {
		v.at(p("bus", "max_memory"), "max_memory %s is too small: give the probe tasks at least %s", b.MaxMemory, ByteSize(minMaxMemory))
	}
}

// LoadBus reads the bus section of the file at path alone, with its
// defaults: for a command that needs nothing else ("tocsin setup", which
// sizes the streams of a cluster), and reads no secret. The rest of the
// file is not checked; problems in the bus section are, as Load does.
func LoadBus(path string) (Bus, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Bus{}, fmt.Errorf("read config: %w", err)
	}
	var doc struct {
		Bus Bus `yaml:"bus"`
	}
	var problems Problems
	if err := yaml.Unmarshal(data, &doc); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return Bus{}, Problems{syntaxProblem(path, err)}
		}
		for _, e := range te.Errors {
			problems = append(problems, typeProblem(path, e))
		}
	}
	c := Config{Bus: doc.Bus}
	c.setDefaults()
	v := &validator{file: path}
	v.bus(&c.Bus)
	if len(v.problems) > 0 {
		var root yaml.Node
		if err := yaml.Unmarshal(data, &root); err == nil && len(root.Content) > 0 {
			for i := range v.problems {
				v.problems[i].Line = lineOf(root.Content[0], v.problems[i].path)
			}
		}
	}
	if problems = append(problems, v.problems...); len(problems) > 0 {
		return Bus{}, problems
	}
	return c.Bus, nil
}
