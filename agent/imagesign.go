package agent

import (
	"context"
	"errors"
	"strings"

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
// A refusal marks the version bad for what the registry holds: the image and
// the signature images' digests (artifact identity). Signing the image after
// the refusal changes them, so the next poll tries the version again.

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
		sigs := make([]signing.ImageSignature, len(im.Layers))
		for j, l := range im.Layers {
			sigs[j] = signing.ImageSignature{Payload: l.Payload, Signature: l.Signature}
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
		if i == 0 || len(im.Layers) > 0 && len(images[0].Layers) == 0 {
			refusal = err
		}
	}
	return signing.Verified{}, refusal
}

// signatureState names the signature images a check saw, for the artifact
// identity: " signatures=" and each one's manifest digest, or "none".
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
	}
	return b.String()
}

// imageSignatureState is the signature images the registry holds now for c,
// "" when the pipeline checks none or the registry does not answer. It costs
// the pin and the signature images' requests, so the worker asks only while
// a version is recorded as bad.
func (p *imagePipeline) imageSignatureState(ctx context.Context, c *version.Candidate) string {
	src, ok := p.src.(sources.ImageSigner)
	pin, pinnable := p.src.(sources.Pinner)
	if p.verify == nil || !ok || !pinnable {
		return ""
	}
	pinned, err := pin.Pin(ctx, c.Release, p.platform(ctx))
	if err != nil {
		return ""
	}
	images, err := src.ImageSignatures(ctx, c.Release, pinned)
	if err != nil {
		return ""
	}
	return signatureState(images)
}

// identity is the artifact identity of c the bad-version records are
// matched against: artifactIdentity, plus, for an image app that checks
// signatures and has c's version recorded as bad, the signature images the
// registry holds now (so that signing it afterwards retries it).
func (w *worker) identity(ctx context.Context, c *version.Candidate) string {
	id := artifactIdentity(c, w.sigSuffixes())
	ip, ok := w.pipe.(*imagePipeline)
	if !ok || ip.verify == nil {
		return id
	}
	if _, bad := w.st.isBad(c.Version.Original()); !bad {
		return id // nothing to match: spare the registry the requests
	}
	return id + ip.imageSignatureState(ctx, c)
}

// checkedIdentity is the identity a failed deploy of c marks bad: with the
// signature images the deploy checked, when it checked any.
func (w *worker) checkedIdentity(c *version.Candidate) string {
	id := artifactIdentity(c, w.sigSuffixes())
	if ip, ok := w.pipe.(*imagePipeline); ok {
		id += ip.checked
	}
	return id
}
