package testimage

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What `cosign sign --key` writes (see sources/oci/signatures.go): the
// signature image of sha256:<hex> is tagged sha256-<hex>.sig and has one
// layer per signature.
const (
	CosignLayerType           = "application/vnd.dev.cosign.simplesigning.v1+json"
	CosignSignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// CosignKey is a cosign key pair as `cosign generate-key-pair` makes it
// (ECDSA P-256), made for a test.
type CosignKey struct{ priv *ecdsa.PrivateKey }

// NewCosignKey makes a key pair.
func NewCosignKey(t testing.TB) *CosignKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &CosignKey{priv: priv}
}

// PublicPEM is the cosign.pub file.
func (k *CosignKey) PublicPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// CosignSignature is one layer of a signature image.
type CosignSignature struct {
	Payload []byte
	// Signature is base64, as the annotation holds it.
	Signature string
}

// Sign signs payload as cosign does with a P-256 key: ASN.1 ECDSA over its
// SHA-256.
func (k *CosignKey) Sign(payload []byte) CosignSignature {
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		panic(err)
	}
	return CosignSignature{Payload: payload, Signature: base64.StdEncoding.EncodeToString(sig)}
}

// CosignPayload is the simple signing payload cosign signs for the image
// repository@digest ("host/repo", "sha256:...").
func CosignPayload(repository, digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"` + repository + `"},"image":{"docker-manifest-digest":"` +
		digest + `"},"type":"cosign container image signature"},"optional":null}`)
}

// SignatureTag is the tag cosign stores the signatures of digest under.
func SignatureTag(digest string) string { return strings.Replace(digest, ":", "-", 1) + ".sig" }

// MustSign appends k's signature of repo@digest to the repository's signature
// image, as `cosign sign --key` does, and returns the signature image's
// digest.
func (r *Registry) MustSign(t testing.TB, repo, digest string, k *CosignKey) string {
	t.Helper()
	return r.MustAttach(t, repo, digest, k.Sign(CosignPayload(r.Repository(repo), digest)))
}

// MustAttach appends sigs as layers to the signature image of repo@digest
// (made on an empty OCI image when there is none yet) and returns its digest.
func (r *Registry) MustAttach(t testing.TB, repo, digest string, sigs ...CosignSignature) string {
	t.Helper()
	ref, err := name.ParseReference(r.Repository(repo)+":"+SignatureTag(digest), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(t.Context()))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		img = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	} else if err != nil {
		t.Fatal(err)
	}
	for _, s := range sigs {
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:       static.NewLayer(s.Payload, CosignLayerType),
			Annotations: map[string]string{CosignSignatureAnnotation: s.Signature},
			MediaType:   CosignLayerType,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// What `cosign sign --key` writes in the Sigstore bundle layout (cosign 3's
// default; see signing/cosignbundle.go): an artifact whose subject is the
// signed image and whose one layer is the bundle.
const (
	BundleType          = "application/vnd.dev.sigstore.bundle.v0.3+json"
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	inTotoPayloadType   = "application/vnd.in-toto+json"
	emptyConfigType     = "application/vnd.oci.empty.v1+json"
)

// CosignStatement is the in-toto statement `cosign sign` signs for digest
// ("sha256:...") in the bundle layout, with predicate type predicate.
func CosignStatement(digest, predicate string) []byte {
	alg, hex, _ := strings.Cut(digest, ":")
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"` + alg + `":"` + hex +
		`"}}],"predicateType":"` + predicate + `","predicate":{}}`)
}

// Bundle is k's cosign signature of digest in the bundle layout: the bundle
// JSON `cosign sign --key cosign.key --tlog-upload=false` stores.
func (k *CosignKey) Bundle(digest string) []byte {
	return k.SignStatement(CosignStatement(digest, CosignSignPredicate))
}

// SignStatement signs statement as a DSSE envelope (ECDSA over the SHA-256
// of its pre-authentication encoding) and returns the Sigstore bundle that
// holds it, with the key's hint as cosign writes it.
func (k *CosignKey) SignStatement(statement []byte) []byte {
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(inTotoPayloadType), inTotoPayloadType, len(statement), statement)
	sum := sha256.Sum256(pae)
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.priv.PublicKey)
	if err != nil {
		panic(err)
	}
	hint := sha256.Sum256(der)
	b, err := json.Marshal(map[string]any{
		"mediaType": BundleType,
		"verificationMaterial": map[string]any{
			"publicKey": map[string]any{"hint": base64.StdEncoding.EncodeToString(hint[:])},
		},
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(statement),
			"payloadType": inTotoPayloadType,
			"signatures":  []any{map[string]any{"sig": base64.StdEncoding.EncodeToString(sig)}},
		},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// MustSignBundle attaches k's bundle signature of repo@digest, as
// `cosign sign --key` does by default, and returns the artifact's digest.
func (r *Registry) MustSignBundle(t testing.TB, repo, digest string, k *CosignKey) string {
	t.Helper()
	return r.MustAttachBundle(t, repo, digest, k.Bundle(digest), CosignSignPredicate)
}

// MustAttachBundle pushes an artifact referring to repo@digest whose layer
// is bundle, as cosign 3 does (predicate names the statement's predicate
// type in an annotation), and returns the artifact's manifest digest. A
// registry without the referrers API gets the sha256-<hex> fallback tag
// updated by go-containerregistry, as cosign's push does.
func (r *Registry) MustAttachBundle(t testing.TB, repo, digest string, bundle []byte, predicate string) string {
	t.Helper()
	ctx := t.Context()
	subject, err := name.NewDigest(r.Repository(repo)+"@"+digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	head, err := remote.Head(subject, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	config := static.NewLayer([]byte("{}"), emptyConfigType)
	layer := static.NewLayer(bundle, BundleType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(subject.Context(), l, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(l v1.Layer, mt types.MediaType) v1.Descriptor {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		n, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{MediaType: mt, Digest: d, Size: n}
	}
	cfg := desc(config, emptyConfigType)
	cfg.ArtifactType = BundleType
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleType,
		Config:        cfg,
		Layers:        []v1.Descriptor{desc(layer, BundleType)},
		Subject:       &v1.Descriptor{MediaType: head.MediaType, Digest: head.Digest, Size: head.Size},
		Annotations: map[string]string{
			"dev.sigstore.bundle.content":       "dsse-envelope",
			"dev.sigstore.bundle.predicateType": predicate,
		},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(subject.Context().Digest(d.String()), rawManifest{raw, types.OCIManifestSchema1}, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// rawManifest is a manifest to Put as it is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
