package version_test

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		tag      string
		ok       bool
		want     string // String(): the version without "v"
		pre      string
		metadata string
	}{
		{name: "plain", tag: "1.2.3", ok: true, want: "1.2.3"},
		{name: "leading v", tag: "v1.2.3", ok: true, want: "1.2.3"},
		{name: "zeros", tag: "0.0.0", ok: true, want: "0.0.0"},
		{name: "upper-case V is not a version", tag: "V1.2.3"},
		{name: "two v", tag: "vv1.2.3"},
		{name: "v alone", tag: "v"},
		{name: "empty", tag: ""},
		{name: "two parts", tag: "1.2"},
		{name: "one part with v", tag: "v1"},
		{name: "four parts", tag: "1.2.3.4"},
		{name: "latest", tag: "latest"},
		{name: "nightly", tag: "nightly"},
		{name: "release prefix", tag: "release-1"},
		{name: "year", tag: "release-2024"},
		{name: "path prefix", tag: "myapp/v1.2.3"},
		{name: "leading zero in major", tag: "01.2.3"},
		{name: "leading zero in numeric pre-release", tag: "1.2.3-rc.01"},
		{name: "leading space", tag: " 1.2.3"},
		{name: "trailing space", tag: "1.2.3 "},
		{name: "empty pre-release", tag: "1.2.3-"},
		{name: "empty metadata", tag: "1.2.3+"},
		{name: "empty pre-release identifier", tag: "1.2.3-rc..1"},
		{name: "underscore in pre-release", tag: "1.2.3-rc_1"},
		{name: "negative", tag: "-1.2.3"},
		{name: "major beyond 64 bits", tag: "99999999999999999999.0.0"},
		{name: "pre-release", tag: "v1.2.3-rc.1", ok: true, want: "1.2.3-rc.1", pre: "rc.1"},
		{name: "pre-release with hyphens", tag: "1.0.0-x-y-z.--", ok: true, want: "1.0.0-x-y-z.--", pre: "x-y-z.--"},
		{name: "numeric pre-release", tag: "1.0.0-0.3.7", ok: true, want: "1.0.0-0.3.7", pre: "0.3.7"},
		{name: "metadata kept", tag: "1.2.3+build.5", ok: true, want: "1.2.3+build.5", metadata: "build.5"},
		{name: "metadata with leading zero is fine", tag: "1.0.0+001", ok: true, want: "1.0.0+001", metadata: "001"},
		{
			name: "pre-release and metadata with v", tag: "v1.0.0-beta.2+exp.sha.5114f85", ok: true,
			want: "1.0.0-beta.2+exp.sha.5114f85", pre: "beta.2", metadata: "exp.sha.5114f85",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := version.Parse(tt.tag)
			if ok != tt.ok {
				t.Fatalf("Parse(%q) ok = %v, want %v", tt.tag, ok, tt.ok)
			}
			if !ok {
				if v != nil {
					t.Errorf("Parse(%q) returned %v with ok = false", tt.tag, v)
				}
				return
			}
			if got := v.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if got := v.Original(); got != tt.tag {
				t.Errorf("Original() = %q, want the tag %q", got, tt.tag)
			}
			if got := v.Prerelease(); got != tt.pre {
				t.Errorf("Prerelease() = %q, want %q", got, tt.pre)
			}
			if got := v.Metadata(); got != tt.metadata {
				t.Errorf("Metadata() = %q, want %q", got, tt.metadata)
			}
			// The v-prefixed path goes through a second parser: it must read the
			// same parts as the strict one.
			strict, err := semver.StrictNewVersion(strings.TrimPrefix(tt.tag, "v"))
			if err != nil {
				t.Fatalf("StrictNewVersion: %v", err)
			}
			if v.String() != strict.String() || version.Compare(v, strict) != 0 {
				t.Errorf("Parse(%q) = %v, strict parse = %v", tt.tag, v, strict)
			}
		})
	}
}

func TestCompareSpecOrder(t *testing.T) {
	// The SemVer 2 specification's own examples of precedence (rule 11), lowest first.
	specOrder := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "2.0.0", "2.1.0", "2.1.1",
	}
	vs := make([]*semver.Version, len(specOrder))
	for i, s := range specOrder {
		v, ok := version.Parse(s)
		if !ok {
			t.Fatalf("Parse(%q) failed", s)
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := cmp.Compare(i, j)
			if got := version.Compare(vs[i], vs[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	// Sorting a shuffled copy gives the spec's order back.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := slices.Clone(vs)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		slices.SortFunc(shuffled, version.Compare)
		for i, v := range shuffled {
			if v.Original() != specOrder[i] {
				t.Fatalf("sorted[%d] = %s, want %s", i, v.Original(), specOrder[i])
			}
		}
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{name: "rc.10 above rc.2", a: "1.0.0-rc.10", b: "1.0.0-rc.2", want: 1},
		{name: "minor numerically", a: "1.10.0", b: "1.9.0", want: 1},
		{name: "release above its rc", a: "1.0.0", b: "1.0.0-rc.1", want: 1},
		{name: "metadata ignored", a: "1.0.0+a", b: "1.0.0+b", want: 0},
		{name: "metadata ignored against none", a: "v1.0.0+build.9", b: "1.0.0", want: 0},
		{name: "v ignored", a: "v1.2.3", b: "1.2.3", want: 0},
		{name: "numeric below alphanumeric", a: "1.0.0-1", b: "1.0.0-a", want: -1},
		{name: "alphanumeric in ASCII order", a: "1.0.0-Beta", b: "1.0.0-alpha", want: -1},
		{name: "more identifiers above fewer", a: "1.0.0-rc.1.1", b: "1.0.0-rc.1", want: 1},
		{
			name: "numeric identifiers beyond 64 bits compare numerically",
			a:    "1.0.0-rc.100000000000000000000", b: "1.0.0-rc.99999999999999999999", want: 1,
		},
		{
			name: "beyond 64 bits still below a word",
			a:    "1.0.0-100000000000000000000", b: "1.0.0-a", want: -1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := version.Parse(tt.a)
			if !ok {
				t.Fatalf("Parse(%q) failed", tt.a)
			}
			b, ok := version.Parse(tt.b)
			if !ok {
				t.Fatalf("Parse(%q) failed", tt.b)
			}
			if got := version.Compare(a, b); got != tt.want {
				t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
			}
			if got := version.Compare(b, a); got != -tt.want {
				t.Errorf("Compare(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}
