package config

import (
	"fmt"
	"strconv"
	"strings"
)

// FreeSpace is the agent block's min_free_space: a size in bytes ("1GiB",
// "500MB", "1073741824") or a percentage of the file system ("5%"). The zero
// value means the release store's default (1 GiB, at most 5% of the disk).
type FreeSpace struct {
	Bytes   int64
	Percent float64
}

// IsZero reports whether no reserve was given.
func (f FreeSpace) IsZero() bool { return f == FreeSpace{} }

// sizeUnits are the suffixes a size may have, longest first so that "GiB"
// is not read as "B".
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// ParseFreeSpace reads a min_free_space value.
func ParseFreeSpace(s string) (FreeSpace, error) {
	v := strings.TrimSpace(s)
	if v == "" {
		return FreeSpace{}, fmt.Errorf("empty")
	}
	if num, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || p <= 0 || p >= 100 || p != p {
			return FreeSpace{}, fmt.Errorf("%q is not a percentage above 0 and below 100", s)
		}
		return FreeSpace{Percent: p}, nil
	}
	lower := strings.ToLower(v)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(lower, u.suffix); ok {
			lower, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(lower, 64)
	if err != nil || n < 0 || n != n || n*float64(mult) > 1<<62 {
		return FreeSpace{}, fmt.Errorf("%q is not a size such as \"1GiB\" or \"500MB\"", s)
	}
	b := int64(n * float64(mult))
	if b == 0 {
		return FreeSpace{}, fmt.Errorf("%q is zero; give a size above zero (the reserve protects the other services on the disk)", s)
	}
	return FreeSpace{Bytes: b}, nil
}

// checkFreeSpace decodes min_free_space, with a diagnostic at its range for
// a bad value.
func (d *decoder) checkFreeSpace(s setting[string]) FreeSpace {
	if s.Bad || !s.Set {
		return FreeSpace{}
	}
	f, err := ParseFreeSpace(s.Val)
	if err != nil {
		d.fail(s.Range, "Invalid min_free_space", "min_free_space: %v; give a size such as \"1GiB\" or a percentage of the disk such as \"5%%\".", err)
		return FreeSpace{}
	}
	return f
}
