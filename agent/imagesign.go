package agent

import (
	"context"
	"errors"
	"strings"

	"github.com/dewy-agent/dewy-agent/config"
	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Cosign signatures of images (issue 16, point 2): an img:// app with
// cosign_public_key in its verify block runs an image only when a cosign
// signature made with that key covers the exact digest the agent pinned.
// The check is part of the image pipeline's prepare, after Pin and before the
// runner gets the image, so a refused image never starts a container.
//
// Which signatures count (see sources.ImageSigner): those of the pinned
// platform manifest, and those of the index the release's tag names when that
// index lists the pinned manifest (`cosign sign image:tag` signs the index of
// a multi-platform image). The signing package checks that a signature's
// payload names the digest it is attached to, so a signature copied from
// another image does not count.
//
// Both of cosign's layouts count: the signature image tagged
// sha256-<hex>.sig, and the Sigstore bundles in artifacts that refer to the
// image (cosign 3's default).
//
// A refusal marks the version bad for what the registry holds: the image,
// the signature images' digests and the bundle artifacts' digests (artifact
// identity). Signing the image after the refusal changes them, so the next
// poll tries the version again.

// imageVerifier is the part of an app's *signing.Verifier the image pipeline
// uses.
type imageVerifier interface {
	VerifyImage(digest string, sigs []signing.ImageSignature) (signing.Verified, error)
}

// verifyImage checks the signatures of the pinned image ("repo@sha256:...")
// of candidate c. A refusal is a *signing.Rejected, which the worker marks
// bad and notifies as signature_rejected, as a file's; any other error is the
// registry's (retried later).
// It records what it checked in p.checked.
func (p *imagePipeline) verifyImage(ctx context.Context, c *version.Candidate, pinned string) (signing.Verified, error) {
	p.checked = ""
	src, ok := p.src.(sources.ImageSigner)
	if !ok {
		// Config validation refuses cosign_public_key for such registries;
		// this is the guard should one slip through.
		return signing.Verified{}, &signing.Rejected{Reasons: []signing.Reason{{
			Method: signing.Cosign, Why: "this registry cannot hold cosign signatures"}}}
	}
	images, err := src.ImageSignatures(ctx, c.Release, pinned)
	if err != nil {
		return signing.Verified{}, err
	}
	p.checked = signatureState(images)
	var refusal error
	for i, im := range images {
		sigs := make([]signing.ImageSignature, 0, len(im.Layers)+len(im.Bundles))
		for _, l := range im.Layers {
			sigs = append(sigs, signing.ImageSignature{Payload: l.Payload, Signature: l.Signature})
		}
		for _, b := range im.Bundles {
			sigs = append(sigs, signing.ImageSignature{Bundle: b.Bundle})
		}
		v, err := p.verify.VerifyImage(im.Digest, sigs)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, signing.ErrRejected) {
			return signing.Verified{}, err
		}
		// The pinned manifest's verdict, unless it has no signature and the
		// index has some: then why the index's failed says more.
		if i == 0 || im.Signed() && !images[0].Signed() {
			refusal = err
		}
	}
	return signing.Verified{}, refusal
}

// signatureState names the signatures a check saw, for the artifact
// identity: " signatures=" and, per signed digest, its signature image's
// manifest digest (or "none") followed by "+" and the manifest digest of
// each Sigstore bundle that refers to it. Without bundles it is what it was
// before the agent read them, so older bad marks still match.
func signatureState(images []sources.SignatureImage) string {
	var b strings.Builder
	b.WriteString(" signatures=")
	for i, im := range images {
		if i > 0 {
			b.WriteByte(',')
		}
		if im.Manifest == "" {
			b.WriteString("none")
		} else {
			b.WriteString(im.Manifest)
		}
		for _, bu := range im.Bundles {
			b.WriteByte('+')
			b.WriteString(bu.Manifest)
		}
	}
	return b.String()
}

// currentSignatures names the signature images src holds now for c, pinned
// for platform, as signatureState does; "" when src cannot pin or hold
// signatures or does not answer.
func currentSignatures(ctx context.Context, src sources.Source, platform string, c *version.Candidate) string {
	signer, ok := src.(sources.ImageSigner)
	pin, pinnable := src.(sources.Pinner)
	if !ok || !pinnable {
		return ""
	}
	pinned, err := pin.Pin(ctx, c.Release, platform)
	if err != nil {
		return ""
	}
	images, err := signer.ImageSignatures(ctx, c.Release, pinned)
	if err != nil {
		return ""
	}
	return signatureState(images)
}

// identityFor is the identity c is matched against the bad marks st holds:
// artifactIdentity, plus, for an image app that checks cosign signatures and
// has c's version marked bad, the signature images src holds now, so that
// signing it after a refusal retries it; for a file release of a source
// that lists no files (grpc) whose signature files were refused, the files
// src holds now (siblingIdentity). Without a bad mark the registry is not
// asked: the pin and signature reads cost requests on every poll.
func identityFor(ctx context.Context, app config.App, st *State, src sources.Source, platform string, c *version.Candidate) string {
	id := artifactIdentity(c, sigSuffixes(app))
	if c.Release.Image == "" {
		if _, ok := src.(sources.Siblings); !ok || len(sigSuffixes(app)) == 0 {
			return id
		}
		b, bad := st.isBad(c.Version.Original())
		if !bad {
			return id
		}
		return siblingIdentity(ctx, src, c, sigSuffixes(app), id, b)
	}
	if !app.Verify.Images() {
		return id
	}
	b, bad := st.isBad(c.Version.Original())
	if !bad {
		return id
	}
	sigs := currentSignatures(ctx, src, platform, c)
	if sigs == "" && strings.HasPrefix(b.Artifact, id+" signatures=") {
		// The registry did not answer: nothing shows the signatures
		// changed, so the mark stands (rather than a deploy that fails
		// the same way).
		return b.Artifact
	}
	return id + sigs
}

// identity is identityFor the worker's app, pinned for the runner's
// platform.
func (w *worker) identity(ctx context.Context, c *version.Candidate) string {
	platform := ""
	if ip, ok := w.pipe.(*imagePipeline); ok && w.app.Verify.Images() {
		platform = ip.platform(ctx)
	}
	return identityFor(ctx, w.app, &w.st, w.src, platform, c)
}

// checkedIdentity is the identity a failed deploy of c marks bad: with the
// signature images the deploy checked, when it checked any, and, when err
// refused the signature files fetched beside a grpc artifact, what they held.
func (w *worker) checkedIdentity(c *version.Candidate, err error) string {
	id := artifactIdentity(c, sigSuffixes(w.app))
	switch p := w.pipe.(type) {
	case *imagePipeline:
		id += p.checked
	case *filePipeline:
		if errors.Is(err, signing.ErrRejected) {
			id += siblingState(sigSuffixes(w.app), p.fetched)
		}
	}
	return id
}
