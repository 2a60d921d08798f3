package version

import (
	"cmp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Parse reads a release tag as a strict SemVer 2 version.
//
// One leading lower-case "v" is allowed ("v1.2.3" and "1.2.3"); the rest must be a
// complete SemVer 2 version: three numeric parts without leading zeros, an
// optional pre-release and optional build metadata. "1.2", "v1", "latest",
// "release-1", "vv1.2.3" and tags with spaces are not versions.
//
// An upper-case "V" is not accepted: the semver library keeps the tag as
// published in Original() only for "v", and a version whose Original() is not
// its tag would make sources fetch the wrong name.
//
// The returned version keeps the build metadata (Metadata()) and the tag as
// published (Original()).
func Parse(tag string) (*semver.Version, bool) {
	v, ok := parseQuick(tag)
	if !ok || v.Original() == tag {
		return v, ok
	}
	// StrictNewVersion recorded the tag without its "v"; NewVersion accepts the
	// prefix and records the whole tag. The strict parse above already proved
	// the rest valid, so both read the same parts.
	withV, err := semver.NewVersion(tag)
	if err != nil {
		return nil, false
	}
	return withV, true
}

// parseQuick is Parse without the second parse that makes Original() the
// tag: for a "v" tag, Original() lacks the "v". Select orders with it and
// parses the chosen tag again with Parse.
func parseQuick(tag string) (*semver.Version, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	if err != nil {
		return nil, false
	}
	return v, true
}

// Compare orders two versions by SemVer 2 precedence: -1 when a is lower, 0 when
// equal, +1 when a is higher. Build metadata is ignored. Unlike the semver
// library it also compares numeric pre-release identifiers too large for 64
// bits numerically. Both versions must be non-nil.
func Compare(a, b *semver.Version) int {
	if c := cmp.Compare(a.Major(), b.Major()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Minor(), b.Minor()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Patch(), b.Patch()); c != 0 {
		return c
	}
	return comparePrerelease(a.Prerelease(), b.Prerelease())
}

// comparePrerelease applies SemVer 2 rule 11 to two pre-release strings; ""
// means a normal version, which is higher than any pre-release.
func comparePrerelease(a, b string) int {
	if a == b {
		return 0
	}
	if a == "" {
		return 1
	}
	if b == "" {
		return -1
	}
	for {
		ai, arest, amore := strings.Cut(a, ".")
		bi, brest, bmore := strings.Cut(b, ".")
		if c := compareIdentifier(ai, bi); c != 0 {
			return c
		}
		switch {
		case !amore && !bmore:
			return 0
		case !amore:
			return -1 // a ran out of identifiers first
		case !bmore:
			return 1
		}
		a, b = arest, brest
	}
}

// compareIdentifier compares one dot-separated pre-release identifier: numbers
// numerically (of any length), numbers below words, words in ASCII order.
func compareIdentifier(a, b string) int {
	an, bn := isNumeric(a), isNumeric(b)
	switch {
	case an && bn:
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
