package server

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// MaxPorts is how many ports a server runner may listen on, ranges expanded
// (Dewy's limit: a range such as "8000-8100" at most).
const MaxPorts = 101

// decodePorts reads ports: a list whose items are port numbers (8000, "8000")
// or ranges ("8000-8010", both ends included), mixed. Ranges are expanded in
// order. A bad range, a port listed twice (also through overlapping ranges)
// and more than MaxPorts ports in all are diagnostics at the item. Single
// numbers out of 1-65535 are left for Config.problems, which reports them.
func decodePorts(d *hclsettings.Decoder, expr hcl.Expression, blk hcl.Range) hclsettings.Setting[[]int] {
	raw := hclsettings.Eval[hclsettings.PortList](d, expr, "ports", `a list of ports and port ranges, e.g. [8000, "9000-9010"]`, blk)
	out := hclsettings.Setting[[]int]{Set: raw.Set, Bad: raw.Bad, Range: raw.Range}
	if raw.Bad || !raw.Set {
		return out
	}
	seen := map[int]bool{}
	total := 0
	for i, item := range raw.Val {
		rng := itemRange(expr, i, raw.Range)
		first, last, err := parsePortItem(item)
		if err != nil {
			d.Fail(rng, "Invalid port", "ports[%d]: %v.", i, err)
			out.Bad = true
			continue
		}
		total += last - first + 1
		if total > MaxPorts {
			d.Fail(rng, "Too many ports", "ports lists %d ports or more with ranges expanded; at most %d are allowed.", total, MaxPorts)
			out.Bad = true
			break
		}
		var dups []int
		for p := first; p <= last; p++ {
			if p != 0 && seen[p] {
				dups = append(dups, p)
				continue
			}
			seen[p] = true
			out.Val = append(out.Val, p)
		}
		switch {
		case len(dups) == 1:
			d.Fail(rng, "Duplicate port", "port %d is listed twice; list each port once.", dups[0])
		case len(dups) > 1:
			d.Fail(rng, "Duplicate port", "ports %d to %d are listed twice (%d ports); list each port once.", dups[0], dups[len(dups)-1], len(dups))
		}
	}
	return out
}

// parsePortItem reads "8000" as 8000-8000 and "8000-8010" as a range. A
// single number is returned as written; a range's ends must be ports (1 to
// 65535), the first no higher than the last.
func parsePortItem(item string) (first, last int, err error) {
	s := strings.TrimSpace(item)
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, 0, fmt.Errorf("%q is not a port number or a range such as \"8000-8010\"", item)
		}
		return n, n, nil
	}
	a, errA := strconv.Atoi(strings.TrimSpace(lo))
	b, errB := strconv.Atoi(strings.TrimSpace(hi))
	switch {
	case errA != nil || errB != nil:
		return 0, 0, fmt.Errorf("%q is not a range of two port numbers such as \"8000-8010\"", item)
	case !hclsettings.ValidPort(a) || !hclsettings.ValidPort(b):
		return 0, 0, fmt.Errorf("range %q has a port that is not a number from 1 to 65535", item)
	case a > b:
		return 0, 0, fmt.Errorf("range %q starts above its end; write the lower port first", item)
	}
	return a, b, nil
}

// itemRange is the source range of the list's i-th item when the list is
// written literally in native syntax, else the attribute's range.
func itemRange(expr hcl.Expression, i int, whole hcl.Range) hcl.Range {
	if t, ok := expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
		return t.Exprs[i].Range()
	}
	return whole
}
