package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Cosign signatures
//
// `cosign sign --key` stores the signatures of the image whose manifest digest
// is sha256:<hex> as an image of their own, tagged sha256-<hex>.sig in the
// same repository: one layer per signature, of media type
// application/vnd.dev.cosign.simplesigning.v1+json, whose blob is the signed
// payload and whose dev.cosignproject.cosign/signature annotation is the
// signature. Signing again appends a layer, so the signature image's digest
// changes with every new signature.
//
// cosign 3 stores a signature in another layout by default (cosign 2 with
// --new-bundle-format): an OCI artifact in the same repository whose subject
// is the signed image, with one layer of media type
// application/vnd.dev.sigstore.bundle.v0.3+json, the Sigstore bundle that
// holds the signature (see signing/cosignbundle.go). It is found through the
// registry's referrers API (GET /v2/<repo>/referrers/<digest>), or, where the
// registry has none, the index tagged sha256-<hex> that clients keep in its
// place (go-containerregistry's remote.Referrers reads either). Each
// signature is an artifact of its own, so signing again adds a referrer.
// Other referrers (SBOMs, attestations with another predicate) are skipped
// without reading them when their descriptor says what they are.
//
// Which digest is signed: `cosign sign image:tag` signs what the tag names,
// which for a multi-platform image is the index, while the agent pins (and
// runs) the platform's manifest inside it. So ImageSignatures reads both: the
// signatures of the pinned manifest, and those of the index the release's tag
// names when that index lists the pinned manifest. A signature over the
// index vouches for every manifest the index lists by digest, so it covers
// the pinned one; an index that does not list it (the tag moved since Pin)
// is ignored.

const (
	// cosignLayerType is the media type of a signature layer.
	cosignLayerType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// cosignSignatureAnnotation holds a layer's base64 signature.
	cosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
	// maxSignatureLayers bounds the signatures read for one digest.
	maxSignatureLayers = 64
	// maxPayloadSize bounds one payload (cosign's are a few hundred bytes)
	// or bundle (a few KiB).
	maxPayloadSize = 1 << 20

	// bundleTypePrefix begins the media types of Sigstore bundles, as layer
	// and as artifact type (…bundle.v0.3+json, …bundle+json;version=0.2).
	bundleTypePrefix = "application/vnd.dev.sigstore.bundle"
	// emptyConfigType is the config media type of an OCI artifact; some
	// registries (go-containerregistry's own) give it as a referrer's
	// artifact type instead of the manifest's artifactType.
	emptyConfigType = "application/vnd.oci.empty.v1+json"
	// bundlePredicateAnnotation is the annotation cosign puts on a bundle
	// artifact naming its statement's predicate type.
	bundlePredicateAnnotation = "dev.sigstore.bundle.predicateType"
	// cosignSignPredicate is the predicate type of a `cosign sign` signature.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// ImageSignatures returns the cosign signatures, in both layouts, of pinned
// and of the index rel's tag names, when it lists pinned. See
// sources.ImageSigner.
func (r *Registry) ImageSignatures(ctx context.Context, rel version.Release, pinned string) ([]sources.SignatureImage, error) {
	at := strings.LastIndex(pinned, "@")
	if at < 0 {
		return nil, fmt.Errorf("img %s: signatures of %q: not pinned by digest", r.display, pinned)
	}
	d, err := v1.NewHash(pinned[at+1:])
	if err != nil {
		return nil, fmt.Errorf("img %s: signatures of %q: %w", r.display, pinned, err)
	}
	p, err := r.client()
	if err != nil {
		return nil, err
	}
	own, err := r.signatureImage(ctx, p, d)
	if err != nil {
		return nil, err
	}
	out := []sources.SignatureImage{own}
	if rel.Tag == "" {
		return out, nil
	}
	idx, err := r.indexListing(ctx, p, rel.Tag, d)
	if err != nil || idx == (v1.Hash{}) {
		return out, err
	}
	of, err := r.signatureImage(ctx, p, idx)
	if err != nil {
		return nil, err
	}
	return append(out, of), nil
}

// indexListing returns the digest of the index tag names when it lists
// manifest; the zero hash when tag names something else (or nothing now).
func (r *Registry) indexListing(ctx context.Context, p *remote.Puller, tag string, manifest v1.Hash) (v1.Hash, error) {
	desc, err := p.Get(ctx, r.repo.Tag(tag))
	if err != nil {
		if notFound(err) && ctx.Err() == nil {
			return v1.Hash{}, nil
		}
		return v1.Hash{}, r.wrap(ctx, "resolve "+tag+" for its signatures", err)
	}
	if !desc.MediaType.IsIndex() || desc.Digest == manifest {
		return v1.Hash{}, nil
	}
	ii, err := desc.ImageIndex()
	if err != nil {
		return v1.Hash{}, r.wrap(ctx, "resolve "+tag+" for its signatures", err)
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return v1.Hash{}, r.wrap(ctx, "resolve "+tag+" for its signatures", err)
	}
	for _, m := range im.Manifests {
		if m.Digest == manifest {
			return desc.Digest, nil
		}
	}
	return v1.Hash{}, nil
}

// signatureImage reads the signatures of digest d in both layouts: the
// signature image tagged sha256-<hex>.sig and the bundles that refer to d.
// Their absence is no error: the result then has no layers or bundles.
func (r *Registry) signatureImage(ctx context.Context, p *remote.Puller, d v1.Hash) (sources.SignatureImage, error) {
	out, err := r.legacySignatures(ctx, p, d)
	if err != nil {
		return out, err
	}
	out.Bundles, err = r.bundles(ctx, p, d)
	return out, err
}

// legacySignatures reads the signature image of digest d: the
// sha256-<hex>.sig tag.
func (r *Registry) legacySignatures(ctx context.Context, p *remote.Puller, d v1.Hash) (sources.SignatureImage, error) {
	out := sources.SignatureImage{Digest: d.String()}
	tag := d.Algorithm + "-" + d.Hex + ".sig"
	op := "read signatures " + tag
	desc, err := p.Get(ctx, r.repo.Tag(tag))
	if err != nil {
		if notFound(err) && ctx.Err() == nil {
			return out, nil
		}
		return out, r.wrap(ctx, op, err)
	}
	out.Manifest = desc.Digest.String()
	if !desc.MediaType.IsImage() {
		return out, nil // not a signature image: no signatures
	}
	img, err := desc.Image()
	if err != nil {
		return out, r.wrap(ctx, op, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return out, r.wrap(ctx, op, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != cosignLayerType {
			continue
		}
		if len(out.Layers) == maxSignatureLayers {
			break
		}
		if l.Size > maxPayloadSize {
			return out, fmt.Errorf("img %s: %s: a signature payload of %d bytes; cosign's are far smaller", r.display, op, l.Size)
		}
		payload, err := readBlob(img, l.Digest)
		if err != nil {
			return out, r.wrap(ctx, op, err)
		}
		out.Layers = append(out.Layers, sources.SignatureLayer{Payload: payload, Signature: l.Annotations[cosignSignatureAnnotation]})
	}
	return out, nil
}

// bundles reads the Sigstore bundles of the artifacts that refer to d, in
// the order of their manifest digests, at most maxSignatureLayers of them.
func (r *Registry) bundles(ctx context.Context, p *remote.Puller, d v1.Hash) ([]sources.SignatureBundle, error) {
	op := "read the referrers of " + d.String()
	idx, err := remote.Referrers(r.repo.Digest(d.String()), remote.Reuse(p), remote.WithContext(ctx))
	if err != nil {
		if noReferrersAPI(err) && ctx.Err() == nil {
			// Neither the API nor a fallback tag the library could read:
			// such a registry cannot hold cosign 3's signatures.
			return nil, nil
		}
		return nil, r.wrap(ctx, op, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, r.wrap(ctx, op, err)
	}
	var descs []v1.Descriptor
	for _, desc := range im.Manifests {
		if mayHoldBundle(desc) {
			descs = append(descs, desc)
		}
	}
	slices.SortFunc(descs, func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	var out []sources.SignatureBundle
	for _, desc := range descs {
		if len(out) == maxSignatureLayers {
			break
		}
		b, err := r.bundle(ctx, p, d, desc.Digest)
		if err != nil {
			return nil, err
		}
		if b != nil {
			out = append(out, sources.SignatureBundle{Manifest: desc.Digest.String(), Bundle: b})
		}
	}
	return out, nil
}

// mayHoldBundle reports whether a referrer may be a cosign signature bundle,
// from what its descriptor says.
func mayHoldBundle(desc v1.Descriptor) bool {
	if !desc.MediaType.IsImage() && desc.MediaType != "" {
		return false
	}
	if p, ok := desc.Annotations[bundlePredicateAnnotation]; ok && p != cosignSignPredicate {
		return false // an attestation made with cosign attest
	}
	t := desc.ArtifactType
	return t == "" || t == emptyConfigType || strings.HasPrefix(t, bundleTypePrefix)
}

// bundle reads the bundle layer of the referrer manifest m of subject; nil
// when m is not a bundle artifact referring to subject (or is gone).
func (r *Registry) bundle(ctx context.Context, p *remote.Puller, subject, m v1.Hash) ([]byte, error) {
	op := "read the referrer " + m.String()
	desc, err := p.Get(ctx, r.repo.Digest(m.String()))
	if err != nil {
		if notFound(err) && ctx.Err() == nil {
			return nil, nil
		}
		return nil, r.wrap(ctx, op, err)
	}
	if !desc.MediaType.IsImage() {
		return nil, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, r.wrap(ctx, op, err)
	}
	man, err := img.Manifest()
	if err != nil {
		return nil, r.wrap(ctx, op, err)
	}
	if man.Subject == nil || man.Subject.Digest != subject {
		return nil, nil // a fallback tag may list anything
	}
	for _, l := range man.Layers {
		if !strings.HasPrefix(string(l.MediaType), bundleTypePrefix) {
			continue
		}
		if l.Size > maxPayloadSize {
			return nil, fmt.Errorf("img %s: %s: a Sigstore bundle of %d bytes; cosign's are far smaller", r.display, op, l.Size)
		}
		b, err := readBlob(img, l.Digest)
		if err != nil {
			return nil, r.wrap(ctx, op, err)
		}
		return b, nil
	}
	return nil, nil
}

// noReferrersAPI reports whether err is a registry refusing the referrers
// endpoint in a way go-containerregistry does not take as "use the fallback
// tag" (405 Method Not Allowed, 501 Not Implemented).
func noReferrersAPI(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusMethodNotAllowed || terr.StatusCode == http.StatusNotImplemented)
}

// readBlob reads one small blob of img, checked against its digest.
func readBlob(img v1.Image, d v1.Hash) ([]byte, error) {
	l, err := img.LayerByDigest(d)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxPayloadSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPayloadSize {
		return nil, fmt.Errorf("blob %s is larger than its manifest says", d)
	}
	return b, nil
}

// notFound reports whether err is the registry saying a tag or manifest does
// not exist.
func notFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && (terr.StatusCode == http.StatusNotFound ||
		hasCode(terr, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode))
}

var _ sources.ImageSigner = (*Registry)(nil)
