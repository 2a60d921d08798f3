package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// pipeline is how a release reaches the runner: as files (downloaded, verified
// and extracted into the release store) or as an image (pinned by digest). The
// worker's loop is the same for both; newPipeline picks one at wiring time from
// what the runner needs (runners.Input).
//
// A pipeline is used by the worker's loop goroutine only.
type pipeline interface {
	// resume returns the deployment of the release st records, for the
	// runner's Resume. ok is false when the release is gone and must be
	// deployed again.
	resume(st State) (d runners.Deployment, ok bool, err error)
	// restore points `current` at the release dir again, to roll back a
	// deploy an earlier agent life left in flight (files only).
	restore(dir string) error
	// prepare makes the candidate ready for the runner. Its error is a
	// *deployError naming the step; on error nothing is left behind.
	prepare(ctx context.Context, c *version.Candidate) (*staged, error)
	// deployed runs after the runner took the release and state.json
	// records it (old releases are pruned).
	deployed()
}

// staged is a release made ready for the runner by a pipeline.
type staged struct {
	d runners.Deployment
	// sha256 is the artifact's digest; empty for images.
	sha256 string
	// dir is the release directory relative to the app directory, as
	// state.json keeps it; empty for images.
	dir string
	// activated: the runner made the release current (so a failure after it
	// means it was switched back).
	activated bool
	// verified is what the signature check found (signing.Verified's
	// String), "" when the app verifies nothing.
	verified string
	// discard removes what prepare made, after a later step failed.
	discard func()
}

// newPipeline returns the pipeline for a runner that needs input.
func newPipeline(input runners.Input, src sources.Source, run runners.Runner, store *releasestore.Store, dir string, logger *slog.Logger) pipeline {
	if input == runners.Image {
		return &imagePipeline{src: src, runner: run, logger: logger}
	}
	return &filePipeline{src: src, store: store, dir: dir, logger: logger}
}

// filePipeline brings a release's artifact into the release store: checksum,
// download and extract, and `current` switched by the runner through
// Activate.
type filePipeline struct {
	src    sources.Source
	store  *releasestore.Store
	dir    string // the app directory
	logger *slog.Logger
	// progress, when set, counts the artifact's bytes for status.
	progress *progress
	// published, in a fleet, is the SHA-256 the fleet's poller published
	// for a version: what a release without a checksum file is verified
	// against (agent/fleet.go).
	published func(tag string) string
	// verifier, when the app has a verify block, checks the artifact's
	// signature on the downloaded bytes before they are extracted.
	verifier *signing.Verifier
	// fetched is what the last prepare's signature check found beside the
	// artifact of a source that lists no files: suffix to "none" or
	// "sha256:<hex>" (filesign.go).
	fetched map[string]string
}

func (p *filePipeline) resume(st State) (runners.Deployment, bool, error) {
	cur, err := p.store.Current()
	if err != nil {
		return runners.Deployment{}, false, err
	}
	if cur == "" {
		return runners.Deployment{}, false, nil // removed by hand
	}
	return runners.Deployment{Version: st.Version, Image: st.Image, Dir: cur}, true, nil
}

func (p *filePipeline) restore(dir string) error { return p.store.Switch(dir) }

func (p *filePipeline) prepare(ctx context.Context, c *version.Candidate) (*staged, error) {
	tag := c.Version.Original()
	p.fetched = nil
	sum, err := p.checksum(ctx, c)
	if err != nil {
		return nil, &deployError{step: "verify", err: err}
	}
	open := func(ctx context.Context) (io.ReadCloser, error) {
		r, err := p.src.Open(ctx, c.Release, c.Artifact)
		if err != nil || p.progress == nil {
			return r, err
		}
		p.progress.begin(c.Artifact.Name, c.Artifact.Size)
		return countingReader{ReadCloser: r, p: p.progress}, nil
	}
	var verified signing.Verified
	var check releasestore.Check
	if p.verifier != nil {
		check = func(r io.ReaderAt, size int64) (err error) {
			verified, err = p.verifier.VerifyFile(ctx, c.Artifact.Name, r, size, p.signatures(c))
			return err
		}
	}
	prep, err := p.store.PrepareChecked(ctx, tag, c.Artifact.Name, c.Artifact.Size, sum, open, check)
	if p.progress != nil {
		p.progress.end()
	}
	if err != nil {
		if errors.Is(err, signing.ErrRejected) {
			return nil, &deployError{step: "verify", err: err}
		}
		return nil, &deployError{step: "download", err: err}
	}
	s := &staged{
		d:      runners.Deployment{Version: tag, Image: c.Release.Image, Dir: prep.Dir},
		sha256: prep.SHA256,
	}
	if p.verifier != nil {
		s.verified = verified.String()
		p.logger.Info("signature verified", "version", tag, "artifact", c.Artifact.Name, "by", s.verified)
	}
	if rel, err := filepath.Rel(p.dir, prep.Dir); err == nil {
		s.dir = rel
	}
	s.discard = func() {
		if err := p.store.Remove(prep.Dir); err != nil {
			p.logger.Warn("remove failed release", "dir", prep.Dir, "err", err)
		}
	}
	activate, rollback, err := p.store.Activation(prep.Dir)
	if err != nil {
		s.discard()
		return nil, &deployError{step: "activate", err: err}
	}
	s.d.Activate = func() error { s.activated = true; return activate() }
	s.d.Rollback = rollback
	return s, nil
}

func (p *filePipeline) deployed() {
	if err := p.store.Prune(); err != nil {
		p.logger.Warn("prune old releases", "err", err)
	}
}

// signatures fetches the signature files beside c's artifact: the
// release's asset named after the artifact plus the suffix, or, from a
// source that lists no files (grpc), its Sibling. At most
// signing.MaxSignatureSize+1 bytes are read. What a Sibling held is
// recorded in p.fetched (filesign.go).
func (p *filePipeline) signatures(c *version.Candidate) signing.Fetch {
	p.fetched = map[string]string{}
	_, siblings := p.src.(sources.Siblings)
	return func(ctx context.Context, suffix string) ([]byte, error) {
		name := c.Artifact.Name + suffix
		asset, ok := signatureAsset(p.src, c, suffix)
		if !ok {
			return nil, fmt.Errorf("%s: %w", name, signing.ErrMissing)
		}
		b, err := readSignature(ctx, p.src, c, asset)
		switch {
		case errors.Is(err, signing.ErrMissing):
			if siblings {
				p.fetched[suffix] = "none"
			}
			return nil, fmt.Errorf("%s: %w", name, signing.ErrMissing)
		case err != nil:
			return nil, fmt.Errorf("fetch %s: %w", name, err)
		}
		if siblings {
			p.fetched[suffix] = sigFileState(b)
		}
		return b, nil
	}
}

// signatureAsset is the asset of c's release named after its artifact plus
// suffix: found in the release's listing, or named by a source that hands
// out URLs (sources.Siblings).
func signatureAsset(src sources.Source, c *version.Candidate, suffix string) (version.Asset, bool) {
	name := c.Artifact.Name + suffix
	for _, a := range c.Release.Assets {
		if a.Name == name {
			return a, true
		}
	}
	if s, ok := src.(sources.Siblings); ok {
		return s.Sibling(c.Release, c.Artifact, suffix)
	}
	return version.Asset{}, false
}

// checksum returns the SHA-256 the release publishes for the artifact, or "" when
// it publishes none.
func (p *filePipeline) checksum(ctx context.Context, c *version.Candidate) (string, error) {
	if c.Checksum == nil {
		if p.published != nil {
			return p.published(c.Version.Original()), nil
		}
		return "", nil
	}
	r, err := p.src.Open(ctx, c.Release, *c.Checksum)
	if err != nil {
		return "", fmt.Errorf("fetch checksum file %s: %w", c.Checksum.Name, err)
	}
	defer r.Close()
	sum, err := version.ParseChecksums(r, c.Artifact.Name)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: checksum file %s: %w", runners.ErrBadRelease, c.Checksum.Name, err)
	}
	return sum, nil
}

// imagePipeline hands the runner an image, pinned by digest for the runner's
// platform when the source can pin (see sources.Pinner), and with verify set,
// only once a cosign signature covers that digest (imagesign.go).
type imagePipeline struct {
	src    sources.Source
	runner runners.Runner
	verify imageVerifier // nil: signatures are not checked
	logger *slog.Logger
	// checked names the signature images the last prepare checked, for the
	// artifact identity a refusal marks bad; "" when it checked none.
	checked string
}

func (p *imagePipeline) resume(st State) (runners.Deployment, bool, error) {
	return runners.Deployment{Version: st.Version, Image: st.Image}, true, nil
}

func (p *imagePipeline) restore(string) error { return nil }

func (p *imagePipeline) prepare(ctx context.Context, c *version.Candidate) (*staged, error) {
	s := &staged{d: runners.Deployment{Version: c.Version.Original(), Image: c.Release.Image}, discard: func() {}}
	p.checked = ""
	pin, ok := p.src.(sources.Pinner)
	if !ok {
		if p.verify != nil {
			return nil, &deployError{step: "verify", err: &signing.Rejected{Reasons: []signing.Reason{{
				Method: signing.Cosign, Why: "the image cannot be pinned by digest, so no signature can cover it"}}}}
		}
		return s, nil
	}
	ref, err := pin.Pin(ctx, c.Release, p.platform(ctx))
	if err != nil {
		if errors.Is(err, sources.ErrIncompatible) {
			err = fmt.Errorf("%w: %w", runners.ErrBadRelease, err)
		}
		return nil, &deployError{step: "pin", err: err}
	}
	s.d.Image = ref
	if p.verify != nil {
		v, err := p.verifyImage(ctx, c, ref)
		if err != nil {
			return nil, &deployError{step: "verify", err: err}
		}
		s.verified = v.String()
		p.logger.Info("image signature verified", "version", s.d.Version, "image", ref, "by", s.verified)
	}
	return s, nil
}

func (p *imagePipeline) deployed() {}

// platform is the platform images are chosen for: the container engine's own
// when the runner can ask it, else this host's ("" lets the source decide).
func (p *imagePipeline) platform(ctx context.Context) string {
	if r, ok := p.runner.(runners.Platformer); ok {
		if s, err := r.Platform(ctx); err == nil {
			return s
		}
	}
	return ""
}

var (
	_ pipeline = (*filePipeline)(nil)
	_ pipeline = (*imagePipeline)(nil)
)
