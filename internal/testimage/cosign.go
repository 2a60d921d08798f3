package testimage

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
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
