package stack

import (
	"encoding/json"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// String formats the duration as Go does ("1m30s"); zero is "0s".
func (d Duration) String() string { return d.Duration.String() }

// IsZero lets yaml omitempty (and encoding/json omitzero) drop a zero duration.
func (d Duration) IsZero() bool { return d.Duration == 0 }

// ParseDuration reads a Go duration string such as "90s" or "5m".
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q (write a Go duration such as \"90s\" or \"5m\"): %w", s, err)
	}
	return Duration{v}, nil
}

// MarshalYAML writes the duration as a string; zero is written as "0s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a duration string. The loader decodes durations itself
// (to position errors); this serves callers that use yaml.v3 directly.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration is a string such as \"90s\" or \"5m\"", n.Line)
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\" or \"5m\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
