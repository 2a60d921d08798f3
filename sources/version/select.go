package version

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNoVersion is wrapped by Select when no release is an allowed version: the
// list is empty, no tag is a semantic version, or every version is a
// pre-release and the policy does not allow them.
var ErrNoVersion = errors.New("no allowed version")

// ErrNoArtifact is wrapped by Select when allowed versions exist but none has an
// asset matching the policy, and at least one of them is past its grace period.
var ErrNoArtifact = errors.New("no matching artifact")

// maxListedAssets caps the asset names an ErrNoArtifact message lists.
const maxListedAssets = 10

// Selection is what Select decided.
type Selection struct {
	// Candidate is the newest allowed release that can be deployed, or nil when
	// every allowed release newer than any deployable one is still within its
	// grace period.
	Candidate *Candidate
	// Skipped are the allowed releases newer than Candidate (all of them when
	// Candidate is nil) that have no matching artifact, newest first.
	Skipped []Skip
}

// Skip is one release passed over for lack of a matching artifact.
type Skip struct {
	// Tag is the release's tag as published.
	Tag string
	// Reason says what was missing, e.g. "no asset for linux/amd64 among 3 assets".
	Reason string
	// Waiting is true while the release is younger than the grace period: CI may
	// still be uploading, so this is not worth reporting. False means the
	// release is old enough that the missing artifact is an error to report.
	Waiting bool
}

// Select chooses the release to deploy from what a source listed.
//
//   - Tags that Parse does not accept are ignored; with p.CalVer set, tags
//     that the CalVer format does not read are ignored instead.
//   - With p.Slot set, versions whose build metadata is not the slot are
//     ignored: the slot filters before the newest is chosen.
//   - Pre-releases (a SemVer pre-release part, or Release.PreRelease set by
//     the registry) are ignored unless p.PreRelease.
//   - The rest are ordered newest first by SemVer 2 precedence (Compare;
//     calendar versions number by number, then by pre-release as SemVer). Of
//     two tags equal in precedence ("v1.0.0" and "1.0.0", "1.0.0+a" and
//     "1.0.0+b") the one with the later Created comes first, then the tag that
//     sorts first byte-wise ("1.0.0" before "1.0.0+a" before "v1.0.0"); fully
//     identical entries keep the source's order.
//   - Walking from the newest, the first release with a matching artifact
//     (PickArtifact) is the Candidate, with its checksum file (PickChecksum).
//     A release with Image set is an image release and needs no artifact.
//   - Newer releases without a matching artifact go to Skipped, Waiting while
//     now - Created < grace. Grace is p.Grace, DefaultGrace when zero, and none
//     when negative. A release with zero Created (age unknown) never waits.
//
// Errors: no allowed version wraps ErrNoVersion (with a zero Selection). When
// allowed versions exist but none has a matching artifact, the result is a
// Selection with a nil Candidate and no error if every one of them is
// waiting; otherwise the error wraps ErrNoArtifact, names the OS/arch or
// artifact looked for and the newest release's first asset names, and the
// Selection still holds Skipped.
func Select(releases []Release, p Policy, now time.Time) (Selection, error) {
	type entry struct {
		rel *Release
		v   *Version
	}
	parse := func(tag string) (*Version, bool) {
		v, ok := parseQuick(tag)
		if !ok {
			return nil, false
		}
		return &Version{tag: tag, sem: v, pre: v.Prerelease(), meta: v.Metadata()}, true
	}
	if p.CalVer != "" {
		f, err := ParseCalVer(p.CalVer)
		if err != nil {
			return Selection{}, fmt.Errorf("%w: %w", ErrNoVersion, err)
		}
		parse = f.Parse
	}
	allowed := make([]entry, 0, len(releases))
	var notVersion, preReleases, otherSlot int
	var example string
	for i := range releases {
		r := &releases[i]
		v, ok := parse(r.Tag)
		if !ok {
			if notVersion == 0 {
				example = r.Tag
			}
			notVersion++
			continue
		}
		// The slot filters first: the newest of the slot's own versions is
		// chosen even when the other slot published last.
		if p.Slot != "" && v.Metadata() != p.Slot {
			otherSlot++
			continue
		}
		if (r.PreRelease || v.Prerelease() != "") && !p.PreRelease {
			preReleases++
			continue
		}
		allowed = append(allowed, entry{rel: r, v: v})
	}
	if len(allowed) == 0 {
		return Selection{}, noVersionError(len(releases), notVersion, example, preReleases, otherSlot, p)
	}
	slices.SortStableFunc(allowed, func(a, b entry) int {
		if c := CompareVersions(b.v, a.v); c != 0 {
			return c
		}
		if c := b.rel.Created.Compare(a.rel.Created); c != 0 {
			return c
		}
		return strings.Compare(a.rel.Tag, b.rel.Tag)
	})

	grace := p.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	var sel Selection
	for _, e := range allowed {
		if e.rel.Image != "" {
			sel.Candidate = &Candidate{Release: *e.rel, Version: e.v}
			return sel, nil
		}
		if a, ok := PickArtifact(e.rel.Assets, p); ok {
			sel.Candidate = &Candidate{
				Release:  *e.rel,
				Version:  e.v,
				Artifact: a,
				Checksum: PickChecksum(e.rel.Assets, a.Name),
			}
			return sel, nil
		}
		sel.Skipped = append(sel.Skipped, Skip{
			Tag:     e.rel.Tag,
			Reason:  missingReason(e.rel.Assets, p),
			Waiting: grace > 0 && !e.rel.Created.IsZero() && now.Sub(e.rel.Created) < grace,
		})
	}
	for _, s := range sel.Skipped {
		if !s.Waiting {
			return sel, noArtifactError(allowed[0].rel, p)
		}
	}
	return sel, nil
}

// lookingFor describes what PickArtifact looks for under p.
func lookingFor(p Policy) string {
	if p.Artifact != "" {
		return fmt.Sprintf("an asset named %q", p.Artifact)
	}
	goos, goarch := host(p)
	return "an asset for " + goos + "/" + goarch
}

func missingReason(assets []Asset, p Policy) string {
	if len(assets) == 0 {
		return "no assets"
	}
	return fmt.Sprintf("no %s among %s", strings.TrimPrefix(lookingFor(p), "an "), count(len(assets), "asset"))
}

func noVersionError(total, notVersion int, example string, preReleases, otherSlot int, p Policy) error {
	if total == 0 {
		return fmt.Errorf("%w: the registry lists no releases", ErrNoVersion)
	}
	var parts []string
	if notVersion > 0 {
		kind := "a semantic version like v1.2.3 or 1.2.3"
		if p.CalVer != "" {
			kind = fmt.Sprintf("a calendar version of the format %q", p.CalVer)
		}
		parts = append(parts, fmt.Sprintf(
			"%s with a tag that is not %s (such as %q)",
			count(notVersion, "release"), kind, example))
	}
	if otherSlot > 0 {
		parts = append(parts, fmt.Sprintf(
			"%s of another slot (the slot is %q: build metadata \"+%s\")", count(otherSlot, "release"), p.Slot, p.Slot))
	}
	if preReleases > 0 {
		parts = append(parts, fmt.Sprintf(
			"%s, not allowed (set pre_release = true to allow them)", count(preReleases, "pre-release")))
	}
	return fmt.Errorf("%w: %s listed: %s", ErrNoVersion, count(total, "release"), strings.Join(parts, "; "))
}

func noArtifactError(newest *Release, p Policy) error {
	var seen string
	switch n := len(newest.Assets); {
	case n == 0:
		seen = "no assets"
	default:
		names := make([]string, 0, min(n, maxListedAssets))
		for _, a := range newest.Assets[:min(n, maxListedAssets)] {
			names = append(names, a.Name)
		}
		seen = fmt.Sprintf("%s: %s", count(n, "asset"), strings.Join(names, ", "))
		if n > maxListedAssets {
			seen += fmt.Sprintf(" and %d more", n-maxListedAssets)
		}
	}
	hint := "set artifact to the exact name of the asset to deploy " +
		"(automatic selection takes archives and executables whose name holds the OS and architecture)"
	if p.Artifact != "" {
		hint = "check the artifact name (it must match exactly, case included)"
	}
	return fmt.Errorf("%w: no release has %s; the newest, %s, has %s; %s",
		ErrNoArtifact, lookingFor(p), newest.Tag, seen, hint)
}

// count is "1 asset", "2 assets".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
