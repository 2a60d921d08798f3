// Package version is the one selection engine every source uses. Its words:
//
//   - Release: one tagged release a registry holds, with its assets.
//   - Asset: one downloadable file of a release (an artifact, a checksum file, ...).
//   - Policy: what an app allows: pre-releases, an exact artifact name, the host's OS/arch.
//   - Candidate: the release the engine chose, with the artifact to fetch and the
//     checksum file that covers it, if the release publishes one.
//
// Sources only list what exists; this package decides what is newest and what to fetch.
package version

import (
	"time"
)

// Asset is one downloadable file of a release.
type Asset struct {
	// Name is the file name, e.g. "myapp_linux_amd64.tar.gz".
	Name string `json:"name"`
	// Ref locates the asset for the source that listed it (an API URL, an object
	// key, a path). Only that source interprets it.
	Ref string `json:"ref"`
	// Size in bytes, or -1 when the registry does not say.
	Size int64 `json:"size"`
	// Created is when the asset was uploaded; zero when unknown.
	Created time.Time `json:"created,omitzero"`
}

// Release is one release a registry holds.
type Release struct {
	// Tag is the registry's name for the release: "v1.2.3", "1.2.3", "latest", ...
	Tag string `json:"tag"`
	// PreRelease is the registry's own pre-release flag (GitHub has one). A tag
	// with a SemVer pre-release part is a pre-release whatever this says.
	PreRelease bool `json:"pre_release,omitempty"`
	// Created is when the release was published, used for the artifact grace period.
	Created time.Time `json:"created,omitzero"`
	// Assets are the release's files.
	Assets []Asset `json:"assets,omitempty"`
	// Image is set by image registries: the reference to pull (pinned by digest
	// when the source knows it). File registries leave it empty.
	Image string `json:"image,omitempty"`
}

// Policy is what an app allows.
type Policy struct {
	// PreRelease allows pre-release versions.
	PreRelease bool
	// Artifact, when set, is the exact asset name to fetch.
	Artifact string
	// OS and Arch are the host's GOOS and GOARCH.
	OS, Arch string
	// Grace is how long a new release without a matching artifact is waited
	// for silently. Zero means DefaultGrace; negative means no grace at all.
	Grace time.Duration
	// CalVer, when set, is the calendar-version format tags are read with
	// ("YYYY.0M.MICRO", see ParseCalVer) instead of SemVer.
	CalVer string
	// Slot, when set, keeps only the versions whose build metadata is exactly
	// Slot ("blue" for "v1.2.3+blue") before the newest is chosen.
	Slot string
}

// DefaultGrace is the seed's 30-minute grace period for CI to upload artifacts.
const DefaultGrace = 30 * time.Minute

// Candidate is the release chosen for deployment.
type Candidate struct {
	Release Release
	// Version is the parsed tag; Version.Original() is the tag as published.
	Version *Version
	// Artifact is the asset to fetch. Zero for image releases.
	Artifact Asset
	// Checksum is the asset that lists the artifact's SHA-256 (SHA256SUMS,
	// checksums.txt, <artifact>.sha256), or nil when the release has none.
	Checksum *Asset
}
