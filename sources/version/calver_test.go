package version_test

import (
	"cmp"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestParseCalVerFormats(t *testing.T) {
	tests := []struct {
		format  string
		wantErr string // "" means valid
	}{
		{format: "YYYY.0M.MICRO"},
		{format: "YYYY.0M.0D.MICRO"},
		{format: "YY.MM.DD"},
		{format: "0Y.0W"},
		{format: "YYYY-WW-MICRO"},
		{format: "YYYY_0D"},
		{format: "", wantErr: "empty"},
		{format: "x.y", wantErr: "where a token"},
		{format: "...", wantErr: "no token"},
		{format: "YYYY.0M+blue", wantErr: `"+"`},
		{format: "YYYY.QQ", wantErr: "where a token"},
		{format: " YYYY", wantErr: "spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, err := version.ParseCalVer(tt.format)
			if tt.wantErr == "" {
				if err != nil || f.Format() != tt.format {
					t.Fatalf("ParseCalVer(%q) = %v, %v; want the format", tt.format, f, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCalVer(%q) error = %v, want one containing %q", tt.format, err, tt.wantErr)
			}
		})
	}
}

func TestCalVerParse(t *testing.T) {
	tests := []struct {
		format, tag string
		ok          bool
		pre, meta   string
	}{
		{format: "YYYY.0M.MICRO", tag: "2026.01.0", ok: true},
		{format: "YYYY.0M.MICRO", tag: "v2026.12.15", ok: true},
		{format: "YYYY.0M.MICRO", tag: "2026.12.3-rc.1+blue", ok: true, pre: "rc.1", meta: "blue"},
		{format: "YYYY.0M.MICRO", tag: "2026.1.0"},   // 0M needs two digits
		{format: "YYYY.0M.MICRO", tag: "2026.13.0"},  // no month 13
		{format: "YYYY.0M.MICRO", tag: "26.01.0"},    // YYYY is four digits
		{format: "YYYY.0M.MICRO", tag: "2026.01.01"}, // MICRO has no leading zero
		{format: "YYYY.0M.MICRO", tag: "V2026.01.0"},
		{format: "YYYY.0M.MICRO", tag: "vv2026.01.0"},
		{format: "YYYY.0M.MICRO", tag: "2026.01.0+"},
		{format: "YYYY.MM.DD", tag: "2026.1.31", ok: true},
		{format: "YYYY.MM.DD", tag: "2026.01.31"}, // MM has no zero padding
		{format: "YYYY.MM.DD", tag: "2026.1.32"},
		{format: "YY.0M", tag: "26.03", ok: true},
		{format: "YY.0M", tag: "6.03", ok: true},
		{format: "0Y.0M", tag: "06.03", ok: true},
		{format: "0Y.0M", tag: "6.03"},
		{format: "YYYY.WW", tag: "2026.53", ok: true},
		{format: "YYYY.0W", tag: "2026.54"},
		{format: "YYYY.0W", tag: "2026.07", ok: true},
		{format: "YYYY.0D", tag: "2026.00"},
		{format: "YYYY.0M.0D.MICRO", tag: "2026.02.28.10", ok: true},
		{format: "YYYY.0M.MICRO", tag: "1.2.3"},
		{format: "YYYY.0M.MICRO", tag: "latest"},
	}
	for _, tt := range tests {
		t.Run(tt.format+" "+tt.tag, func(t *testing.T) {
			f, err := version.ParseCalVer(tt.format)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := f.Parse(tt.tag)
			if ok != tt.ok {
				t.Fatalf("Parse(%q) ok = %t, want %t", tt.tag, ok, tt.ok)
			}
			if !ok {
				return
			}
			if v.Original() != tt.tag || v.Prerelease() != tt.pre || v.Metadata() != tt.meta || v.Semver() != nil {
				t.Errorf("Parse(%q) = tag %q pre %q meta %q, want pre %q meta %q", tt.tag, v.Original(), v.Prerelease(), v.Metadata(), tt.pre, tt.meta)
			}
		})
	}
}

func TestCompareCalVer(t *testing.T) {
	f, err := version.ParseCalVer("YYYY.0M.MICRO")
	if err != nil {
		t.Fatal(err)
	}
	// Ascending order, by precedence.
	order := []string{"2025.12.9", "2026.01.0-alpha", "2026.01.0-alpha.1", "2026.01.0-beta", "2026.01.0", "2026.01.2", "2026.01.10", "2026.02.0"}
	for i := range order {
		for j := range order {
			a, _ := f.Parse(order[i])
			b, _ := f.Parse(order[j])
			if a == nil || b == nil {
				t.Fatalf("cannot parse %q or %q", order[i], order[j])
			}
			want := cmp.Compare(i, j)
			if got := version.CompareVersions(a, b); got != want {
				t.Errorf("CompareVersions(%s, %s) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := f.Parse("2026.01.0+blue")
	b, _ := f.Parse("v2026.01.0+green")
	if version.CompareVersions(a, b) != 0 {
		t.Error("build metadata and the v prefix must not change precedence")
	}
}

func TestSelectCalVerAndSlot(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	asset := func(tag string) []version.Asset {
		return []version.Asset{{Name: "app_linux_amd64.tar.gz", Ref: tag}}
	}
	rel := func(tag string, age time.Duration) version.Release {
		return version.Release{Tag: tag, Created: now.Add(-age), Assets: asset(tag)}
	}
	linux := version.Policy{OS: "linux", Arch: "amd64"}
	with := func(p version.Policy, calver, slot string, pre bool) version.Policy {
		p.CalVer, p.Slot, p.PreRelease = calver, slot, pre
		return p
	}
	tests := []struct {
		name     string
		releases []version.Release
		policy   version.Policy
		wantTag  string
		wantErr  error
		wantText string
	}{
		{
			name:     "calver newest by numbers, not by text or age",
			releases: []version.Release{rel("2026.02.9", time.Hour), rel("2026.02.10", 2*time.Hour), rel("v1.9.9", 0)},
			policy:   with(linux, "YYYY.0M.MICRO", "", false), wantTag: "2026.02.10",
		},
		{
			name:     "calver pre-release skipped by default",
			releases: []version.Release{rel("2026.02.1-rc.1", time.Hour), rel("2026.02.0", 2*time.Hour)},
			policy:   with(linux, "YYYY.0M.MICRO", "", false), wantTag: "2026.02.0",
		},
		{
			name:     "calver pre-release allowed",
			releases: []version.Release{rel("2026.02.1-rc.1", time.Hour), rel("2026.02.0", 2*time.Hour)},
			policy:   with(linux, "YYYY.0M.MICRO", "", true), wantTag: "2026.02.1-rc.1",
		},
		{
			name:     "registry pre-release flag applies to calver",
			releases: []version.Release{{Tag: "2026.02.1", PreRelease: true, Assets: asset("a")}, rel("2026.02.0", time.Hour)},
			policy:   with(linux, "YYYY.0M.MICRO", "", false), wantTag: "2026.02.0",
		},
		{
			name:     "semver tags are not calendar versions",
			releases: []version.Release{rel("v1.2.3", time.Hour)},
			policy:   with(linux, "YYYY.0M.MICRO", "", false),
			wantErr:  version.ErrNoVersion, wantText: `not a calendar version of the format "YYYY.0M.MICRO"`,
		},
		{
			name:     "calendar tags are not semantic versions",
			releases: []version.Release{rel("2026.02.0.1", time.Hour)},
			policy:   linux, wantErr: version.ErrNoVersion, wantText: "not a semantic version",
		},
		{
			name:     "bad format is an error",
			releases: []version.Release{rel("2026.02.0", time.Hour)},
			policy:   with(linux, "QQ", "", false), wantErr: version.ErrNoVersion, wantText: "calver format",
		},
		{
			name: "slot deploys although the other slot published last",
			releases: []version.Release{
				rel("v1.3.0+green", time.Minute), rel("v1.2.0+blue", time.Hour), rel("v1.1.0+blue", 2*time.Hour),
			},
			policy: with(linux, "", "blue", false), wantTag: "v1.2.0+blue",
		},
		{
			name:     "green slot",
			releases: []version.Release{rel("v1.3.0+green", time.Minute), rel("v1.2.0+blue", time.Hour)},
			policy:   with(linux, "", "green", false), wantTag: "v1.3.0+green",
		},
		{
			name:     "slot ignores versions without metadata",
			releases: []version.Release{rel("v2.0.0", time.Minute), rel("v1.0.0+blue", time.Hour)},
			policy:   with(linux, "", "blue", false), wantTag: "v1.0.0+blue",
		},
		{
			name:     "slot with calver",
			releases: []version.Release{rel("2026.03.0+green", time.Minute), rel("2026.02.4+blue", time.Hour)},
			policy:   with(linux, "YYYY.0M.MICRO", "blue", false), wantTag: "2026.02.4+blue",
		},
		{
			name:     "no version of the slot",
			releases: []version.Release{rel("v1.3.0+green", time.Minute), rel("v1.2.0", time.Hour)},
			policy:   with(linux, "", "blue", false), wantErr: version.ErrNoVersion, wantText: `2 releases of another slot (the slot is "blue"`,
		},
		{
			name:     "slot pre-release rules",
			releases: []version.Release{rel("v1.3.0-rc.1+blue", time.Minute), rel("v1.2.0+blue", time.Hour)},
			policy:   with(linux, "", "blue", false), wantTag: "v1.2.0+blue",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := version.Select(tt.releases, tt.policy, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantText) {
					t.Fatalf("Select error = %v, want %v containing %q", err, tt.wantErr, tt.wantText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sel.Candidate == nil || sel.Candidate.Version.Original() != tt.wantTag || sel.Candidate.Release.Tag != tt.wantTag {
				t.Fatalf("Candidate = %+v, want %s", sel.Candidate, tt.wantTag)
			}
		})
	}
}

func TestParseTag(t *testing.T) {
	if v, ok := version.ParseTag("v1.2.3+blue", ""); !ok || v.Original() != "v1.2.3+blue" || v.Metadata() != "blue" || v.Semver() == nil {
		t.Errorf("ParseTag semver = %v, %t", v, ok)
	}
	if v, ok := version.ParseTag("2026.01.0", "YYYY.0M.MICRO"); !ok || v.Original() != "2026.01.0" {
		t.Errorf("ParseTag calver = %v, %t", v, ok)
	}
	if _, ok := version.ParseTag("2026.01.0", ""); ok {
		t.Error("a calendar tag is not a semantic version")
	}
	if _, ok := version.ParseTag("2026.01.0", "bad"); ok {
		t.Error("a bad format reads no tag")
	}
	if !version.MaybeCalVer("v2026.01") || version.MaybeCalVer("latest") || version.MaybeCalVer("v") {
		t.Error("MaybeCalVer")
	}
}
