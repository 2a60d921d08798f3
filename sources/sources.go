// Package sources defines what a registry is to the agent. Its words:
//
//   - Source: one app's view of one registry URL. It lists releases and opens assets.
//   - Scheme: the URL scheme that picks the implementation ("ghr", "file", ...).
//
// This package holds the interfaces (Source, Scheme, Settings and the
// capabilities); it imports none of the implementations (config's table lists
// them).
package sources

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Source is one app's view of one registry.
//
// Contract:
//   - New* constructors do no I/O; connections are made by the first call.
//   - Methods may be called from one goroutine at a time per Source (the app's
//     loop); two apps never share a Source value.
//   - Every method returns promptly with ctx.Err() (possibly wrapped) once ctx is
//     cancelled.
//   - Releases returns every release the registry holds, newest first or in any
//     order: the version engine sorts and filters. A registry that answers "not
//     modified" returns the list it returned last time, not an error.
//   - Open streams one asset; the caller closes the reader. A source must not
//     buffer the whole asset in memory.
type Source interface {
	Releases(ctx context.Context) ([]version.Release, error)
	Open(ctx context.Context, rel version.Release, asset version.Asset) (io.ReadCloser, error)
}

// Deciding is implemented by sources whose server chooses the version (grpc). The
// agent calls Decide instead of Releases and the version engine.
type Deciding interface {
	Decide(ctx context.Context, p version.Policy) (*version.Candidate, error)
}

// Stateful is implemented by sources that keep state worth persisting across agent
// restarts (ETags and the list they validate). The agent stores the bytes in the
// app's state.json and hands them back to a new Source on start.
type Stateful interface {
	SaveState() ([]byte, error)
	LoadState([]byte) error
}

// Siblings is implemented by sources whose releases do not list their files
// (grpc: the server hands out one artifact URL). Sibling returns the asset
// of rel named asset.Name+suffix that lies beside asset (a signature file),
// for Open; ok is false when the source cannot name one. Whether it exists
// shows only when it is opened (an error wrapping ErrNotFound when not). A
// source that lists its files finds siblings in rel.Assets instead.
type Siblings interface {
	Sibling(rel version.Release, asset version.Asset, suffix string) (version.Asset, bool)
}

// Options are the per-app things a source is built with.
type Options struct {
	// Logger is already tagged with the app and source.
	Logger *slog.Logger
	// HTTPClient is the client for registry traffic. Never nil.
	HTTPClient *http.Client
	// Now returns the current time; tests set it.
	Now func() time.Time
	// Openers fetch artifact URLs of other registries, by lower-case scheme,
	// for sources whose server names the artifact by URL (grpc). Nil: none.
	Openers map[string]Opener
	// Runner is the app's runner kind, which a source that records
	// deployments may name (grpc's ReportRequest.command).
	Runner string
}

// RateLimitedError is returned when a registry asks the agent to wait. The agent
// waits until Until before the next poll of this app.
type RateLimitedError struct {
	Until  time.Time
	Reason string
	// Err is the failure the rate limit came with, if any (Unwrap).
	Err error
}

func (e *RateLimitedError) Error() string {
	return "rate limited until " + e.Until.UTC().Format(time.RFC3339) + ": " + e.Reason
}

// Unwrap returns Err.
func (e *RateLimitedError) Unwrap() error { return e.Err }

// ErrNotFound is wrapped by sources when the repository, bucket or folder does not exist.
var ErrNotFound = errors.New("not found")

// ErrIncompatible is matched (errors.Is) by a source's error when a release
// exists but has nothing this host can run, such as an image index without
// this host's platform. Retrying cannot help: the agent records the version
// as bad, as it does for a release that fails its health check.
var ErrIncompatible = errors.New("release cannot run on this host")

// Report is one deployment outcome, written back to the registry when the app
// asks for it (report = true): the seed's audit tracking.
type Report struct {
	// App is the app's name in the config file; Host is this machine's host name.
	App, Host string
	// Release is the release that was deployed (or failed to deploy); Artifact
	// the asset that was fetched (zero for image releases).
	Release  version.Release
	Artifact version.Asset
	// Time is when the deploy ended.
	Time time.Time
	// Err is the failure, or nil for a successful deploy.
	Err error
	// Verified is what the signature check of a successful deploy found
	// ("minisign key ... (trusted comment: ...)"); "" when the app checks
	// none.
	Verified string
}

// Reporter is implemented by sources that can record deployments in the registry
// (gRPC Report, a release asset on GitHub, an object in S3 or GCS). OCI registries
// have none. Report must not include secrets, and is best effort: the agent logs
// its error and goes on.
type Reporter interface {
	Report(ctx context.Context, r Report) error
}

// Pinner is implemented by image registries: Pin resolves a release's tag to
// the image for platform ("linux/amd64"; "" means this host's), pinned by
// digest ("repo@sha256:..."), so a tag moved during a deploy cannot change what
// runs. The agent calls it right before handing the image to the runner.
type Pinner interface {
	Pin(ctx context.Context, rel version.Release, platform string) (string, error)
}

// ImageSigner is implemented by image registries that can read the cosign
// signatures stored beside an image: under the tag sha256-<hex>.sig of the
// image's repository (cosign's legacy layout), or as Sigstore bundles in
// artifacts that refer to the image (cosign 3's default, found through the
// OCI referrers API or its sha256-<hex> fallback tag). The agent calls it
// after Pin, before the runner gets the image, when the app verifies
// signatures.
//
// ImageSignatures returns the signatures that may vouch for pinned
// ("repo@sha256:..."), as Pin returned it for rel: the pinned manifest's own,
// and, when rel's tag names an index (a multi-platform image) that lists the
// pinned manifest, the index's, since `cosign sign image:tag` signs what the
// tag names. An entry is returned for each such digest, with no layers and no
// bundles when nothing signed it; only a registry failure is an error.
type ImageSigner interface {
	ImageSignatures(ctx context.Context, rel version.Release, pinned string) ([]SignatureImage, error)
}

// SignatureImage is the cosign signatures of one image digest: its signature
// image's layers and the Sigstore bundles that refer to it.
type SignatureImage struct {
	// Digest is the digest the signatures are attached to ("sha256:...").
	Digest string
	// Manifest is the signature image's own manifest digest, "" when there is
	// none: it changes whenever a signature is added.
	Manifest string
	// Layers are its signatures, in manifest order.
	Layers []SignatureLayer
	// Bundles are the Sigstore bundles of the artifacts that refer to
	// Digest, in the order of their manifest digests: adding a signature
	// adds one.
	Bundles []SignatureBundle
}

// SignatureBundle is one cosign signature in the Sigstore bundle layout: an
// artifact whose subject is the signed image and whose layer is the bundle.
type SignatureBundle struct {
	// Manifest is the artifact's manifest digest ("sha256:...").
	Manifest string
	// Bundle is the bundle's JSON.
	Bundle []byte
}

// Signed reports whether im holds any signature, in either layout.
func (im SignatureImage) Signed() bool { return len(im.Layers) > 0 || len(im.Bundles) > 0 }

// SignatureLayer is one cosign signature: the simple signing payload (the
// layer's blob) and the base64 signature from the layer's
// dev.cosignproject.cosign/signature annotation.
type SignatureLayer struct {
	Payload   []byte
	Signature string
}

// WithDefaults returns o with its zero fields filled: a logger that discards, a
// plain HTTP client and time.Now.
func (o Options) WithDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// ParseRetryAfter reads an HTTP Retry-After header value, delay seconds
// ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"), as the time
// to wait until, never before now. ok is false when v is empty or neither.
func ParseRetryAfter(v string, now time.Time) (until time.Time, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		// Capped at a year, far below where the Duration would overflow (~292
		// years); the agent waits an hour at most anyway.
		return now.Add(time.Duration(min(max(secs, 0), 86400*365)) * time.Second), true
	}
	if t, err := http.ParseTime(v); err == nil {
		if t.Before(now) {
			return now, true
		}
		return t, true
	}
	return time.Time{}, false
}
