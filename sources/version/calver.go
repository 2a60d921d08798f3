package version

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Version is one parsed release tag: a SemVer 2 version, or a calendar
// version read with a CalVer format. Original() is always the tag as
// published, which sources fetch by.
type Version struct {
	tag string
	// sem is set for a semantic version.
	sem *semver.Version
	// segments are a calendar version's numbers, in the format's order.
	segments []uint64
	pre      string
	meta     string
}

// FromSemver wraps a semantic version parsed by Parse (or the semver library).
func FromSemver(v *semver.Version) *Version {
	return &Version{tag: v.Original(), sem: v, pre: v.Prerelease(), meta: v.Metadata()}
}

// Original is the tag as published.
func (v *Version) Original() string { return v.tag }

// String is the tag as published.
func (v *Version) String() string { return v.tag }

// Prerelease is the pre-release part (after "-"), "" for a normal version.
func (v *Version) Prerelease() string { return v.pre }

// Metadata is the build metadata (after "+"), the deployment slot when one is used.
func (v *Version) Metadata() string { return v.meta }

// Semver is the semantic version, or nil for a calendar version. Its
// Original() may lack the tag's "v": use v.Original() for the tag.
func (v *Version) Semver() *semver.Version { return v.sem }

// CompareVersions orders two versions parsed the same way: -1 when a is lower,
// 0 when equal in precedence, +1 when higher. Build metadata is ignored; a
// pre-release is lower than the normal version with the same numbers.
func CompareVersions(a, b *Version) int {
	if a.sem != nil && b.sem != nil {
		return Compare(a.sem, b.sem)
	}
	for i := range max(len(a.segments), len(b.segments)) {
		var x, y uint64
		if i < len(a.segments) {
			x = a.segments[i]
		}
		if i < len(b.segments) {
			y = b.segments[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return comparePrerelease(a.pre, b.pre)
}

// CalVer is a parsed calendar-version format such as "YYYY.0M.MICRO", with
// Dewy's tokens:
//
//	YYYY  full year (2026)          YY  short year (6, 26, 106)   0Y  zero-padded short year (06)
//	MM    month (1-12)              0M  zero-padded month (01-12)
//	WW    week of the year (1-53)   0W  zero-padded week (01-53)
//	DD    day of the month (1-31)   0D  zero-padded day (01-31)
//	MICRO a counter (0, 1, 2, ...)
//
// Anything else in the format (".", "-", "_") must appear literally. A tag may
// start with one "v" and end with a SemVer-style pre-release ("-rc.1") and
// build metadata ("+blue").
type CalVer struct {
	format string
	re     *regexp.Regexp
	tokens int
}

// calverTokens are the format tokens and what each matches, longest first so
// that "YYYY" is not read as two "YY".
var calverTokens = []struct{ name, pattern string }{
	{"YYYY", `[0-9]{4}`},
	{"MICRO", `0|[1-9][0-9]*`},
	{"0Y", `[0-9]{2,3}`},
	{"YY", `[1-9][0-9]{0,2}|0`},
	{"0M", `0[1-9]|1[0-2]`},
	{"MM", `1[0-2]|[1-9]`},
	{"0W", `0[1-9]|[1-4][0-9]|5[0-3]`},
	{"WW", `[1-4][0-9]|5[0-3]|[1-9]`},
	{"0D", `0[1-9]|[12][0-9]|3[01]`},
	{"DD", `[12][0-9]|3[01]|[1-9]`},
}

// CalVerTokens are the format tokens a CalVer format may use, for messages.
const CalVerTokens = "YYYY, YY, 0Y, MM, 0M, WW, 0W, DD, 0D, MICRO"

// ParseCalVer reads a CalVer format. It needs at least one token; literals
// between tokens are kept as they are.
func ParseCalVer(format string) (*CalVer, error) {
	if format == "" {
		return nil, errors.New("the calver format is empty")
	}
	if strings.TrimSpace(format) != format || strings.ContainsAny(format, "+ ") {
		return nil, fmt.Errorf("the calver format %q may not hold spaces or \"+\" (build metadata follows the format)", format)
	}
	var b strings.Builder
	b.WriteString(`^v?`)
	tokens := 0
	rest := format
	for rest != "" {
		matched := false
		for _, t := range calverTokens {
			if strings.HasPrefix(rest, t.name) {
				b.WriteString("(" + t.pattern + ")")
				rest = rest[len(t.name):]
				tokens++
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		c := rest[0]
		isLetterOrDigit := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if isLetterOrDigit {
			return nil, fmt.Errorf("the calver format %q has %q where a token (%s) or a separator such as \".\" belongs", format, rest, CalVerTokens)
		}
		b.WriteString(regexp.QuoteMeta(string(c)))
		rest = rest[1:]
	}
	if tokens == 0 {
		return nil, fmt.Errorf("the calver format %q has no token (%s)", format, CalVerTokens)
	}
	ident := `[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*`
	b.WriteString(`(?:-(` + ident + `))?(?:\+(` + ident + `))?$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("the calver format %q cannot be used: %w", format, err)
	}
	return &CalVer{format: format, re: re, tokens: tokens}, nil
}

// Format is the format as written.
func (c *CalVer) Format() string { return c.format }

// Parse reads a tag with the format; false when the tag does not match it.
func (c *CalVer) Parse(tag string) (*Version, bool) {
	m := c.re.FindStringSubmatch(tag)
	if m == nil {
		return nil, false
	}
	v := &Version{tag: tag, segments: make([]uint64, c.tokens)}
	for i := range c.tokens {
		n, err := strconv.ParseUint(m[1+i], 10, 64)
		if err != nil {
			return nil, false
		}
		v.segments[i] = n
	}
	v.pre, v.meta = m[1+c.tokens], m[2+c.tokens]
	return v, true
}

// ParseTag reads tag as a calendar version when calver (a format) is set,
// else as a semantic version (Parse). A bad format reads no tag.
func ParseTag(tag, calver string) (*Version, bool) {
	if calver == "" {
		v, ok := Parse(tag)
		if !ok {
			return nil, false
		}
		return FromSemver(v), true // Parse made Original() the tag
	}
	f, err := ParseCalVer(calver)
	if err != nil {
		return nil, false
	}
	return f.Parse(tag)
}

// MaybeCalVer reports whether tag could be a calendar version of some format:
// an optional "v" and a digit first. Sources that list without knowing the
// app's format (folder names) use it to decide what to look into; Select
// reads the tag with the format.
func MaybeCalVer(tag string) bool {
	tag = strings.TrimPrefix(tag, "v")
	return tag != "" && tag[0] >= '0' && tag[0] <= '9'
}
