// Package money parses USD amounts exactly, into integer pico-dollars
// (1e-12 USD), without floating point. It depends on nothing in llmproc, so
// the config and the client-key records (filter/identity) read amounts the
// same way.
package money

import (
	"fmt"
	"strconv"
	"strings"
)

// Scale is the number of decimal places an amount may have: 12 places is
// exactly one pico-dollar.
const Scale = 12

// PicoPerUSD is one dollar in pico-dollars.
const PicoPerUSD = 1_000_000_000_000

// MaxUSD bounds an amount so that its pico-dollars fit in an int64 with room.
const MaxUSD = 1_000_000

// ParseUSD parses a non-negative amount such as "25.50" into pico-dollars.
func ParseUSD(s string) (int64, error) {
	t := strings.TrimSpace(s)
	intPart, frac, _ := strings.Cut(t, ".")
	if intPart == "" {
		intPart = "0"
	}
	if t == "" || t == "." || !digits(intPart) || !digits(frac) {
		return 0, fmt.Errorf("want a non-negative USD amount like 25.50, got %q", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > Scale {
		return 0, fmt.Errorf("amount %q has more than %d decimal places", s, Scale)
	}
	frac += strings.Repeat("0", Scale-len(frac))
	ip, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || ip > MaxUSD {
		return 0, fmt.Errorf("amount %q is out of range (at most %d USD)", s, MaxUSD)
	}
	fp, _ := strconv.ParseInt(frac, 10, 64)
	return ip*PicoPerUSD + fp, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
