package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "30s", "2m", "500ms".
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a duration like \"30s\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return nodeError(n, "want a duration like \"30s\", got %q", n.Value)
	}
	if v < 0 {
		return nodeError(n, "duration %q is negative", n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// priceScale is the number of decimal places a per-million-token price may
// have: 6 places of USD per million tokens is exactly one pico-dollar per token.
const priceScale = 6

// Decimal is a non-negative USD-per-million-tokens price parsed without floating
// point. Its exact value is PicoPerToken pico-dollars (1e-12 USD) per token.
type Decimal struct {
	Text         string
	PicoPerToken int64
	Set          bool
}

// UnmarshalYAML reads the scalar's literal text, so 0.1 stays exactly 0.1.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return nodeError(n, "want a price like 0.15, got %s", describe(n))
	}
	v, err := ParseDecimal(n.Value)
	if err != nil {
		return nodeError(n, "%v", err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the original text.
func (d Decimal) MarshalYAML() (any, error) { return d.Text, nil }

// ParseDecimal parses a price such as "0.0375" into pico-dollars per token.
func ParseDecimal(s string) (Decimal, error) {
	t := strings.TrimSpace(s)
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" {
		intPart = "0"
	}
	if t == "" || t == "." || strings.ContainsAny(intPart, "+-") || !allDigits(intPart) || !allDigits(frac) {
		return Decimal{}, fmt.Errorf("want a non-negative decimal like 0.15, got %q", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > priceScale {
		return Decimal{}, fmt.Errorf("price %q has more than %d decimal places", s, priceScale)
	}
	frac += strings.Repeat("0", priceScale-len(frac))
	ip, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || ip > 1_000_000 {
		return Decimal{}, fmt.Errorf("price %q is out of range (at most 1000000 USD per million tokens)", s)
	}
	fp, _ := strconv.ParseInt(frac, 10, 64)
	return Decimal{Text: t, PicoPerToken: ip*1_000_000 + fp, Set: true}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
