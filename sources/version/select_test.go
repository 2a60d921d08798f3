package version_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

// testNow is the "now" every Select test runs at.
func testNow() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

// rel is a release published a day before testNow with the named assets.
func rel(tag string, assets ...string) version.Release {
	return aged(tag, 24*time.Hour, assets...)
}

// aged is a release published age before testNow.
func aged(tag string, age time.Duration, assets ...string) version.Release {
	r := version.Release{Tag: tag, Created: testNow().Add(-age)}
	for _, a := range assets {
		r.Assets = append(r.Assets, version.Asset{Name: a, Ref: tag + "/" + a, Size: -1})
	}
	return r
}

// flagged is rel with the registry's own pre-release flag set.
func flagged(tag string, assets ...string) version.Release {
	r := rel(tag, assets...)
	r.PreRelease = true
	return r
}

// image is an image registry's release.
func image(tag string) version.Release {
	r := rel(tag)
	r.Image = "ghcr.io/acme/web:" + tag
	return r
}

func TestSelect(t *testing.T) {
	const art = "myapp_linux_amd64.tar.gz"
	linux := version.Policy{OS: "linux", Arch: "amd64"}
	withPre := version.Policy{OS: "linux", Arch: "amd64", PreRelease: true}
	spec := func(pres ...string) []version.Release {
		var rs []version.Release
		for _, p := range pres {
			rs = append(rs, rel("1.0.0-"+p, art))
		}
		return rs
	}
	zeroCreated := rel("v1.1.0", "notes.md")
	zeroCreated.Created = time.Time{}
	many := rel("v3.0.0")
	for i := range 15 {
		many.Assets = append(many.Assets, version.Asset{Name: fmt.Sprintf("file%02d.txt", i)})
	}

	tests := []struct {
		name         string
		releases     []version.Release
		policy       version.Policy
		wantTag      string // candidate's tag; "" when no candidate
		wantArtifact string
		wantChecksum string
		wantImage    string
		wantMetadata string
		wantSkipped  []version.Skip
		wantErr      error
		wantErrText  []string
		notErrText   []string
	}{
		// Versions and tags.
		{
			name: "empty list", releases: []version.Release{}, policy: linux,
			wantErr: version.ErrNoVersion, wantErrText: []string{"lists no releases"},
		},
		{name: "nil list", policy: linux, wantErr: version.ErrNoVersion},
		{
			name: "only tags that are not versions",
			releases: []version.Release{
				rel("latest", art), rel("nightly", art), rel("1.2", art), rel("v1", art), rel("release-2024", art),
			},
			policy: linux, wantErr: version.ErrNoVersion,
			wantErrText: []string{"5 releases listed", "5 releases with a tag that is not a semantic version", `"latest"`},
			notErrText:  []string{"pre_release"},
		},
		{name: "single release with v", releases: []version.Release{rel("v1.0.0", art)}, policy: linux, wantTag: "v1.0.0", wantArtifact: art},
		{name: "single release without v", releases: []version.Release{rel("1.0.0", art)}, policy: linux, wantTag: "1.0.0", wantArtifact: art},
		{
			name:     "with and without v mixed, numeric order",
			releases: []version.Release{rel("v1.2.0", art), rel("1.10.0", art), rel("v1.9.0", art)},
			policy:   linux, wantTag: "1.10.0", wantArtifact: art,
		},
		{
			name:     "tags that are not versions are ignored",
			releases: []version.Release{rel("latest", art), rel("nightly", art), rel("v1.0.0", art), rel("v2", art), rel("1.2", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},
		{
			name:     "upper-case V tag is ignored",
			releases: []version.Release{rel("V2.0.0", art), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},
		{
			name:     "major beats minor and patch",
			releases: []version.Release{rel("v1.99.99", art), rel("v2.0.0", art), rel("v1.100.0", art)},
			policy:   linux, wantTag: "v2.0.0", wantArtifact: art,
		},

		// Pre-releases.
		{
			name:     "pre-release denied",
			releases: []version.Release{rel("v1.1.0-rc.1", art), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},
		{
			name:     "pre-release allowed",
			releases: []version.Release{rel("v1.1.0-rc.1", art), rel("v1.0.0", art)},
			policy:   withPre, wantTag: "v1.1.0-rc.1", wantArtifact: art,
		},
		{
			name:     "only pre-releases, denied",
			releases: []version.Release{rel("v1.1.0-rc.1", art), rel("v1.1.0-beta", art), rel("nightly", art)},
			policy:   linux, wantErr: version.ErrNoVersion,
			wantErrText: []string{"3 releases listed", "2 pre-releases", "set pre_release = true", `"nightly"`},
		},
		{
			name:     "registry pre-release flag on a plain version, denied",
			releases: []version.Release{flagged("v1.1.0", art), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},
		{
			name:     "registry pre-release flag on a plain version, allowed",
			releases: []version.Release{flagged("v1.1.0", art), rel("v1.0.0", art)},
			policy:   withPre, wantTag: "v1.1.0", wantArtifact: art,
		},
		{
			name:     "only flagged releases, denied",
			releases: []version.Release{flagged("v1.1.0", art)},
			policy:   linux, wantErr: version.ErrNoVersion, wantErrText: []string{"1 pre-release,"},
		},
		{
			name:     "rc.10 beats rc.2",
			releases: []version.Release{rel("v1.0.0-rc.2", art), rel("v1.0.0-rc.10", art), rel("v1.0.0-rc.9", art)},
			policy:   withPre, wantTag: "v1.0.0-rc.10", wantArtifact: art,
		},
		{
			name:     "release beats its pre-releases",
			releases: []version.Release{rel("v1.0.0-rc.1", art), rel("v1.0.0", art), rel("v1.0.0-rc.2", art)},
			policy:   withPre, wantTag: "v1.0.0", wantArtifact: art,
		},
		{
			name:     "pre-release of the next version beats the release",
			releases: []version.Release{rel("v1.0.0", art), rel("v1.0.1-alpha", art)},
			policy:   withPre, wantTag: "v1.0.1-alpha", wantArtifact: art,
		},
		{name: "spec: alpha.1 beats alpha", releases: spec("alpha", "alpha.1"), policy: withPre, wantTag: "1.0.0-alpha.1", wantArtifact: art},
		{name: "spec: alpha.beta beats alpha.1", releases: spec("alpha.beta", "alpha.1"), policy: withPre, wantTag: "1.0.0-alpha.beta", wantArtifact: art},
		{name: "spec: beta beats alpha.beta", releases: spec("alpha.beta", "beta"), policy: withPre, wantTag: "1.0.0-beta", wantArtifact: art},
		{name: "spec: beta.2 beats beta", releases: spec("beta.2", "beta"), policy: withPre, wantTag: "1.0.0-beta.2", wantArtifact: art},
		{name: "spec: beta.11 beats beta.2", releases: spec("beta.2", "beta.11"), policy: withPre, wantTag: "1.0.0-beta.11", wantArtifact: art},
		{name: "spec: rc.1 beats beta.11", releases: spec("beta.11", "rc.1"), policy: withPre, wantTag: "1.0.0-rc.1", wantArtifact: art},
		{
			name:     "spec: whole list, 1.0.0 wins",
			releases: append(spec("beta.11", "alpha", "rc.1", "alpha.beta", "beta", "alpha.1", "beta.2"), rel("1.0.0", art)),
			policy:   withPre, wantTag: "1.0.0", wantArtifact: art,
		},
		{
			name:     "numeric identifier below alphanumeric",
			releases: spec("a", "1", "999"),
			policy:   withPre, wantTag: "1.0.0-a", wantArtifact: art,
		},
		{
			name:     "numeric identifiers beyond 64 bits",
			releases: spec("rc.100000000000000000000", "rc.99999999999999999999"),
			policy:   withPre, wantTag: "1.0.0-rc.100000000000000000000", wantArtifact: art,
		},

		// Build metadata and ties.
		{
			name:     "build metadata kept",
			releases: []version.Release{rel("v1.0.0+build.7", art)},
			policy:   linux, wantTag: "v1.0.0+build.7", wantArtifact: art, wantMetadata: "build.7",
		},
		{
			name:     "build metadata does not outrank a higher version",
			releases: []version.Release{rel("v1.0.0+zzz", art), rel("v1.0.1+aaa", art)},
			policy:   linux, wantTag: "v1.0.1+aaa", wantArtifact: art, wantMetadata: "aaa",
		},
		{
			name:     "equal precedence: later Created wins over metadata order",
			releases: []version.Release{aged("1.0.0+b", 2*time.Hour, art), aged("1.0.0+a", time.Hour, art)},
			policy:   linux, wantTag: "1.0.0+a", wantArtifact: art, wantMetadata: "a",
		},
		{
			name:     "equal precedence and Created: tag sorting first wins",
			releases: []version.Release{rel("v1.0.0", art), rel("1.0.0+b", art), rel("1.0.0", art), rel("1.0.0+a", art)},
			policy:   linux, wantTag: "1.0.0", wantArtifact: art,
		},
		{
			name:     "equal precedence and Created: input order does not matter",
			releases: []version.Release{rel("1.0.0", art), rel("v1.0.0", art)},
			policy:   linux, wantTag: "1.0.0", wantArtifact: art,
		},
		{
			name:     "equal precedence: v tag published later wins",
			releases: []version.Release{aged("1.0.0", 2*time.Hour, art), aged("v1.0.0", time.Hour, art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},

		// Grace period.
		{
			name:     "young release without artifact waits, older one deploys",
			releases: []version.Release{aged("v1.1.0", 5*time.Minute), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no assets", Waiting: true}},
		},
		{
			name:     "old release without artifact is reported, older one deploys",
			releases: []version.Release{aged("v1.1.0", 2*time.Hour, "myapp_darwin_arm64.tar.gz"), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no asset for linux/amd64 among 1 asset"}},
		},
		{
			name: "waiting and reported both recorded, newest first",
			releases: []version.Release{
				rel("v1.0.0", art), aged("v1.1.0", 2*time.Hour, "notes.txt"), aged("v1.2.0", time.Minute),
			},
			policy: linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{
				{Tag: "v1.2.0", Reason: "no assets", Waiting: true},
				{Tag: "v1.1.0", Reason: "no asset for linux/amd64 among 1 asset"},
			},
		},
		{
			name:     "only release is young and has no artifact: no candidate, no error",
			releases: []version.Release{aged("v1.0.0", 10*time.Minute, "SHA256SUMS")},
			policy:   linux,
			wantSkipped: []version.Skip{
				{Tag: "v1.0.0", Reason: "no asset for linux/amd64 among 1 asset", Waiting: true},
			},
		},
		{
			name:     "all young, none with artifact: no candidate, no error",
			releases: []version.Release{aged("v1.0.0", 29*time.Minute), aged("v1.1.0", time.Minute)},
			policy:   linux,
			wantSkipped: []version.Skip{
				{Tag: "v1.1.0", Reason: "no assets", Waiting: true},
				{Tag: "v1.0.0", Reason: "no assets", Waiting: true},
			},
		},
		{
			name:     "young newest and old older, none with artifact: error",
			releases: []version.Release{aged("v1.1.0", time.Minute, "a.txt"), aged("v1.0.0", 48*time.Hour, "b.txt")},
			policy:   linux, wantErr: version.ErrNoArtifact,
			wantErrText: []string{"linux/amd64", "the newest, v1.1.0, has 1 asset: a.txt", "set artifact"},
			notErrText:  []string{"b.txt"},
			wantSkipped: []version.Skip{
				{Tag: "v1.1.0", Reason: "no asset for linux/amd64 among 1 asset", Waiting: true},
				{Tag: "v1.0.0", Reason: "no asset for linux/amd64 among 1 asset"},
			},
		},
		{
			name:     "age exactly the grace period is reported",
			releases: []version.Release{aged("v1.1.0", version.DefaultGrace), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no assets"}},
		},
		{
			name:     "custom grace of an hour still waits at 45 minutes",
			releases: []version.Release{aged("v1.1.0", 45*time.Minute), rel("v1.0.0", art)},
			policy:   version.Policy{OS: "linux", Arch: "amd64", Grace: time.Hour}, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no assets", Waiting: true}},
		},
		{
			name:     "negative grace reports at once, even a release stamped in the future",
			releases: []version.Release{aged("v1.1.0", -time.Minute), rel("v1.0.0", art)},
			policy:   version.Policy{OS: "linux", Arch: "amd64", Grace: -1}, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no assets"}},
		},
		{
			name:     "unknown publication time is reported",
			releases: []version.Release{zeroCreated, rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no asset for linux/amd64 among 1 asset"}},
		},
		{
			name:     "publication time in the future (clock skew) waits",
			releases: []version.Release{aged("v1.1.0", -10*time.Minute), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: "no assets", Waiting: true}},
		},
		{
			name:     "pre-release without artifact skipped, stable deploys",
			releases: []version.Release{rel("v1.1.0-rc.1", "notes.txt"), rel("v1.0.0", art)},
			policy:   withPre, wantTag: "v1.0.0", wantArtifact: art,
			wantSkipped: []version.Skip{{Tag: "v1.1.0-rc.1", Reason: "no asset for linux/amd64 among 1 asset"}},
		},
		{
			name:     "denied pre-releases and non-versions are not in Skipped",
			releases: []version.Release{rel("v2.0.0-rc.1"), rel("latest"), rel("v1.0.0", art)},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art,
		},

		// Artifacts and checksums.
		{
			name:     "exact artifact name wins over an automatic match listed first",
			releases: []version.Release{rel("v1.0.0", art, "myapp-server.tar.gz")},
			policy:   version.Policy{OS: "linux", Arch: "amd64", Artifact: "myapp-server.tar.gz"},
			wantTag:  "v1.0.0", wantArtifact: "myapp-server.tar.gz",
		},
		{
			name:     "exact artifact missing in newest, found in older",
			releases: []version.Release{rel("v1.1.0", art), rel("v1.0.0", "myapp-server.tar.gz")},
			policy:   version.Policy{OS: "linux", Arch: "amd64", Artifact: "myapp-server.tar.gz"},
			wantTag:  "v1.0.0", wantArtifact: "myapp-server.tar.gz",
			wantSkipped: []version.Skip{{Tag: "v1.1.0", Reason: `no asset named "myapp-server.tar.gz" among 1 asset`}},
		},
		{
			name:        "exact artifact missing everywhere",
			releases:    []version.Release{rel("v1.1.0", art), rel("v1.0.0", art)},
			policy:      version.Policy{OS: "linux", Arch: "amd64", Artifact: "myapp-server.tar.gz"},
			wantErr:     version.ErrNoArtifact,
			wantErrText: []string{`no release has an asset named "myapp-server.tar.gz"`, "the newest, v1.1.0, has 1 asset: " + art, "check the artifact name"},
			notErrText:  []string{"linux/amd64"},
			wantSkipped: []version.Skip{
				{Tag: "v1.1.0", Reason: `no asset named "myapp-server.tar.gz" among 1 asset`},
				{Tag: "v1.0.0", Reason: `no asset named "myapp-server.tar.gz" among 1 asset`},
			},
		},
		{
			name: "no artifact for this platform anywhere",
			releases: []version.Release{
				rel("v1.0.0", "myapp_darwin_arm64.tar.gz"),
				rel("v1.1.0", "myapp_darwin_arm64.tar.gz", "myapp_windows_amd64.zip", "checksums.txt"),
			},
			policy: linux, wantErr: version.ErrNoArtifact,
			wantErrText: []string{
				"no release has an asset for linux/amd64",
				"the newest, v1.1.0, has 3 assets: myapp_darwin_arm64.tar.gz, myapp_windows_amd64.zip, checksums.txt",
			},
			wantSkipped: []version.Skip{
				{Tag: "v1.1.0", Reason: "no asset for linux/amd64 among 3 assets"},
				{Tag: "v1.0.0", Reason: "no asset for linux/amd64 among 1 asset"},
			},
		},
		{
			name:        "asset names in the error are capped at ten",
			releases:    []version.Release{many},
			policy:      linux,
			wantErr:     version.ErrNoArtifact,
			wantErrText: []string{"has 15 assets: file00.txt, file01.txt", "file09.txt and 5 more"},
			notErrText:  []string{"file10.txt"},
			wantSkipped: []version.Skip{{Tag: "v3.0.0", Reason: "no asset for linux/amd64 among 15 assets"}},
		},
		{
			name:     "release with no assets at all",
			releases: []version.Release{rel("v1.0.0")},
			policy:   linux, wantErr: version.ErrNoArtifact,
			wantErrText: []string{"the newest, v1.0.0, has no assets"},
			wantSkipped: []version.Skip{{Tag: "v1.0.0", Reason: "no assets"}},
		},
		{
			name:     "checksum file filled in",
			releases: []version.Release{rel("v1.0.0", "SHA256SUMS", art, "myapp_darwin_arm64.tar.gz")},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art, wantChecksum: "SHA256SUMS",
		},
		{
			name:     "per-artifact checksum preferred",
			releases: []version.Release{rel("v1.0.0", "checksums.txt", art, art+".sha256")},
			policy:   linux, wantTag: "v1.0.0", wantArtifact: art, wantChecksum: art + ".sha256",
		},
		{
			name:     "darwin policy picks the macos asset",
			releases: []version.Release{rel("v1.0.0", art, "myapp-macos-arm64.zip")},
			policy:   version.Policy{OS: "darwin", Arch: "arm64"}, wantTag: "v1.0.0", wantArtifact: "myapp-macos-arm64.zip",
		},
		{
			name: "empty OS and arch mean this host's",
			releases: []version.Release{
				rel("v1.0.0", "myapp_plan9_mips.tar.gz", "myapp_"+runtime.GOOS+"_"+runtime.GOARCH+".tar.gz"),
			},
			policy: version.Policy{}, wantTag: "v1.0.0", wantArtifact: "myapp_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz",
		},

		// Image releases.
		{
			name:     "image release needs no artifact",
			releases: []version.Release{image("v1.0.0")},
			policy:   linux, wantTag: "v1.0.0", wantImage: "ghcr.io/acme/web:v1.0.0",
		},
		{
			name:     "image releases ordered, other tags ignored",
			releases: []version.Release{image("latest"), image("v1.0.0"), image("v1.1.0"), image("v1.2.0-beta.1"), image("sha-abc123")},
			policy:   linux, wantTag: "v1.1.0", wantImage: "ghcr.io/acme/web:v1.1.0",
		},
		{
			name:     "image pre-release allowed",
			releases: []version.Release{image("v1.1.0"), image("v1.2.0-beta.1")},
			policy:   withPre, wantTag: "v1.2.0-beta.1", wantImage: "ghcr.io/acme/web:v1.2.0-beta.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.releases)
			sel, err := version.Select(tt.releases, tt.policy, testNow())
			if !slicesEqualReleases(in, tt.releases) {
				t.Error("Select modified its input")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want one wrapping %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if err != nil {
				for _, s := range tt.wantErrText {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				for _, s := range tt.notErrText {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error %q contains %q", err, s)
					}
				}
			}
			if !slices.Equal(sel.Skipped, tt.wantSkipped) {
				t.Errorf("Skipped =\n  %+v\nwant\n  %+v", sel.Skipped, tt.wantSkipped)
			}
			c := sel.Candidate
			if tt.wantTag == "" {
				if c != nil {
					t.Fatalf("Candidate = %s, want none", c.Release.Tag)
				}
				return
			}
			if c == nil {
				t.Fatalf("Candidate = nil, want %s", tt.wantTag)
			}
			if c.Release.Tag != tt.wantTag || c.Version.Original() != tt.wantTag {
				t.Errorf("Candidate tag = %q (Original %q), want %q", c.Release.Tag, c.Version.Original(), tt.wantTag)
			}
			if c.Artifact.Name != tt.wantArtifact {
				t.Errorf("Artifact = %q, want %q", c.Artifact.Name, tt.wantArtifact)
			}
			if tt.wantArtifact != "" && c.Artifact.Ref != tt.wantTag+"/"+tt.wantArtifact {
				t.Errorf("Artifact.Ref = %q, want the listed asset's", c.Artifact.Ref)
			}
			gotSum := ""
			if c.Checksum != nil {
				gotSum = c.Checksum.Name
			}
			if gotSum != tt.wantChecksum {
				t.Errorf("Checksum = %q, want %q", gotSum, tt.wantChecksum)
			}
			if c.Release.Image != tt.wantImage {
				t.Errorf("Image = %q, want %q", c.Release.Image, tt.wantImage)
			}
			if got := c.Version.Metadata(); got != tt.wantMetadata {
				t.Errorf("Metadata() = %q, want %q", got, tt.wantMetadata)
			}
		})
	}
}

func slicesEqualReleases(a, b []version.Release) bool {
	return slices.EqualFunc(a, b, func(x, y version.Release) bool {
		return x.Tag == y.Tag && x.Created.Equal(y.Created) && x.Image == y.Image && slices.Equal(x.Assets, y.Assets)
	})
}

// TestSelectShuffled checks that the source's order never changes the choice.
func TestSelectShuffled(t *testing.T) {
	const art = "myapp_linux_amd64.tar.gz"
	rs := []version.Release{
		rel("1.0.0-alpha", art), rel("1.0.0-alpha.1", art), rel("1.0.0-alpha.beta", art), rel("1.0.0-beta", art),
		rel("1.0.0-beta.2", art), rel("1.0.0-beta.11", art), rel("1.0.0-rc.1", art), rel("latest", art),
		rel("v0.9.0", art), rel("v1.0.0", art), rel("1.0.0", art), rel("1.0.0+build.1", art),
		aged("v1.1.0", time.Minute), rel("v1.0.1-rc.1", art),
	}
	r := rand.New(rand.NewPCG(7, 9))
	for i := range 50 {
		r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		for _, tc := range []struct {
			pre  bool
			want string
		}{{false, "1.0.0"}, {true, "v1.0.1-rc.1"}} {
			sel, err := version.Select(rs, version.Policy{OS: "linux", Arch: "amd64", PreRelease: tc.pre}, testNow())
			if err != nil {
				t.Fatalf("shuffle %d: %v", i, err)
			}
			if sel.Candidate == nil || sel.Candidate.Release.Tag != tc.want {
				t.Fatalf("shuffle %d, pre-release %v: Candidate = %+v, want %s", i, tc.pre, sel.Candidate, tc.want)
			}
			if len(sel.Skipped) != 1 || sel.Skipped[0].Tag != "v1.1.0" || !sel.Skipped[0].Waiting {
				t.Fatalf("shuffle %d: Skipped = %+v", i, sel.Skipped)
			}
		}
	}
}

func BenchmarkSelect(b *testing.B) {
	// 1000 releases of 10 assets each, in shuffled order.
	build := func(artifactIn func(i int) bool) []version.Release {
		rs := make([]version.Release, 0, 1000)
		for i := range 1000 {
			tag := fmt.Sprintf("v%d.%d.%d", i/100, i/10%10, i%10)
			if i%7 == 0 {
				tag += fmt.Sprintf("-rc.%d", i%13)
			}
			names := []string{
				"checksums.txt", "myapp_darwin_amd64.tar.gz", "myapp_darwin_arm64.tar.gz",
				"myapp_linux_386.tar.gz", "myapp_linux_arm64.tar.gz", "myapp_linux_armv7.tar.gz",
				"myapp_windows_amd64.zip", "myapp_windows_arm64.zip", "myapp_linux_amd64.tar.gz.sig",
				"myapp_linux_amd64.tar.gz",
			}
			if !artifactIn(i) {
				names[9] = "myapp_freebsd_amd64.tar.gz"
			}
			rs = append(rs, rel(tag, names...))
		}
		r := rand.New(rand.NewPCG(3, 4))
		r.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
		return rs
	}
	p := version.Policy{OS: "linux", Arch: "amd64"}
	for _, bc := range []struct {
		name     string
		releases []version.Release
	}{
		{"newest has artifact", build(func(int) bool { return true })},
		{"only oldest has artifact", build(func(i int) bool { return i == 1 })}, // v0.0.0 is a pre-release
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sel, err := version.Select(bc.releases, p, testNow())
				if err != nil || sel.Candidate == nil {
					b.Fatalf("Select: %v", err)
				}
			}
		})
	}
}
