package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
)

// cosignSigner signs simple signing payloads as `cosign sign --key` does for
// its key type.
type cosignSigner struct {
	priv crypto.Signer
	pub  []byte // cosign.pub
}

func newCosignSigner(t *testing.T, kind string) cosignSigner {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "p256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cosignSigner{priv: priv, pub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
}

// payload is the simple signing payload cosign writes for digest.
func cosignTestPayload(digest string) []byte {
	return []byte(`{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/app"},"image":{"docker-manifest-digest":"` +
		digest + `"},"type":"cosign container image signature"},"optional":{"creator":"test"}}`)
}

func (s cosignSigner) sign(t *testing.T, payload []byte) ImageSignature {
	t.Helper()
	var sig []byte
	var err error
	switch k := s.priv.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, payload)
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P384() {
			sum := sha512.Sum384(payload)
			sig, err = ecdsa.SignASN1(rand.Reader, k, sum[:])
		} else {
			sum := sha256.Sum256(payload)
			sig, err = ecdsa.SignASN1(rand.Reader, k, sum[:])
		}
	case *rsa.PrivateKey:
		sum := sha256.Sum256(payload)
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return ImageSignature{Payload: payload, Signature: base64.StdEncoding.EncodeToString(sig)}
}

// cosignTestStatement is the in-toto statement `cosign sign` signs in the
// Sigstore bundle layout, for digest and predicate type.
func cosignTestStatement(digest, predicateType string) []byte {
	alg, hex, _ := strings.Cut(digest, ":")
	return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"` + alg + `":"` + hex +
		`"}}],"predicateType":"` + predicateType + `","predicate":{}}`)
}

// bundle wraps statement in a DSSE envelope signed by s and returns the
// Sigstore bundle as `cosign sign --key --tlog-upload=false` writes it (the
// protojson form of a v0.3 bundle with a public key hint).
func (s cosignSigner) bundle(t *testing.T, statement []byte) ImageSignature {
	t.Helper()
	const payloadType = "application/vnd.in-toto+json"
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(statement), statement)
	sig, err := base64.StdEncoding.DecodeString(s.sign(t, pae).Signature)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(s.pub)
	hint := sha256.Sum256(block.Bytes)
	b, err := json.Marshal(map[string]any{
		"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{
			"publicKey": map[string]any{"hint": base64.StdEncoding.EncodeToString(hint[:])},
		},
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(statement),
			"payloadType": payloadType,
			"signatures":  []any{map[string]any{"sig": base64.StdEncoding.EncodeToString(sig)}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Sigstore's own parser must take it, or the test proves nothing.
	var parsed sgbundle.Bundle
	if err := parsed.UnmarshalJSON(b); err != nil {
		t.Fatalf("the test bundle is not a valid Sigstore bundle: %v", err)
	}
	return ImageSignature{Bundle: b}
}

// withBundle returns sig's bundle with its JSON passed through edit.
func withBundle(t *testing.T, sig ImageSignature, edit func(m map[string]any)) ImageSignature {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(sig.Bundle, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return ImageSignature{Bundle: b}
}

func TestCosignVerify(t *testing.T) {
	const signPredicate = "https://sigstore.dev/cosign/sign/v1"
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const other = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	for _, kind := range []string{"p256", "ed25519", "p384", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "rsa" && testing.Short() {
				t.Skip("RSA key generation is slow")
			}
			signer := newCosignSigner(t, kind)
			stranger := newCosignSigner(t, kind)
			k, err := parseCosignKey(signer.pub)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(k.Fingerprint(), "SHA256:") || len(k.Fingerprint()) != len("SHA256:")+43 {
				t.Fatalf("fingerprint %q", k.Fingerprint())
			}
			good := signer.sign(t, cosignTestPayload(digest))
			tampered := good
			goodBundle := signer.bundle(t, cosignTestStatement(digest, signPredicate))
			tampered.Payload = []byte(strings.Replace(string(good.Payload), `"creator":"test"`, `"creator":"evil"`, 1))

			cases := []struct {
				name string
				sigs []ImageSignature
				want string // "" passes
			}{
				{"good", []ImageSignature{good}, ""},
				{"good after a stranger's", []ImageSignature{stranger.sign(t, cosignTestPayload(digest)), good}, ""},
				{"wrong key", []ImageSignature{stranger.sign(t, cosignTestPayload(digest))}, "signed by another key"},
				{"tampered payload", []ImageSignature{tampered}, "signed by another key, or the payload was changed"},
				{"digest mismatch", []ImageSignature{signer.sign(t, cosignTestPayload(other))}, "signature is for " + other + ", not the pinned " + digest},
				{"mismatch beats wrong key", []ImageSignature{stranger.sign(t, cosignTestPayload(digest)), signer.sign(t, cosignTestPayload(other))}, "signature is for " + other},
				{"missing", nil, "no cosign signature for " + digest},
				{"not json", []ImageSignature{signer.sign(t, []byte("hello"))}, "malformed payload"},
				{"wrong type", []ImageSignature{signer.sign(t, []byte(strings.Replace(string(cosignTestPayload(digest)), "cosign container image signature", "something else", 1)))}, `malformed payload: type "something else"`},
				{"no digest", []ImageSignature{signer.sign(t, cosignTestPayload(""))}, "malformed payload: it names no docker-manifest-digest"},
				{"not base64", []ImageSignature{{Payload: good.Payload, Signature: "%%%"}}, "malformed signature"},

				// The Sigstore bundle layout (cosign 3's default).
				{"bundle", []ImageSignature{goodBundle}, ""},
				{"bundle after a legacy stranger's", []ImageSignature{stranger.sign(t, cosignTestPayload(digest)), goodBundle}, ""},
				{"bundle by another key", []ImageSignature{stranger.bundle(t, cosignTestStatement(digest, signPredicate))}, "signed by another key, or the bundle's statement was changed"},
				{"bundle for another digest", []ImageSignature{signer.bundle(t, cosignTestStatement(other, signPredicate))}, "signature is for " + other + ", not the pinned " + digest},
				{"bundle statement swapped", []ImageSignature{withBundle(t, goodBundle, func(m map[string]any) {
					m["dsseEnvelope"].(map[string]any)["payload"] = base64.StdEncoding.EncodeToString(cosignTestStatement(other, signPredicate))
				})}, "signed by another key, or the bundle's statement was changed"},
				{"bundle payload type swapped", []ImageSignature{withBundle(t, goodBundle, func(m map[string]any) {
					m["dsseEnvelope"].(map[string]any)["payloadType"] = "application/json"
				})}, "signed by another key"},
				{"bundle attestation", []ImageSignature{signer.bundle(t, cosignTestStatement(digest, "https://slsa.dev/provenance/v1"))}, `a "https://slsa.dev/provenance/v1" attestation, not a cosign signature`},
				{"bundle keyless", []ImageSignature{withBundle(t, stranger.bundle(t, cosignTestStatement(digest, signPredicate)), func(m map[string]any) {
					m["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "AAAA"}}
				})}, "signed keylessly"},
				{"bundle message signature", []ImageSignature{withBundle(t, goodBundle, func(m map[string]any) {
					delete(m, "dsseEnvelope")
					m["messageSignature"] = map[string]any{"messageDigest": map[string]any{"algorithm": "SHA2_256", "digest": "AAAA"}, "signature": "AAAA"}
				})}, "holds no DSSE envelope"},
				{"bundle not json", []ImageSignature{{Bundle: []byte("{")}}, "malformed Sigstore bundle"},
				{"bundle mismatch beats legacy wrong key", []ImageSignature{stranger.sign(t, cosignTestPayload(digest)), signer.bundle(t, cosignTestStatement(other, signPredicate))}, "signature is for " + other},
			}
			for _, c := range cases {
				key, err := k.verify(digest, c.sigs)
				if key != k.Fingerprint() {
					t.Errorf("%s: key %q, want %q", c.name, key, k.Fingerprint())
				}
				switch {
				case c.want == "" && err != nil:
					t.Errorf("%s: %v", c.name, err)
				case c.want != "" && err == nil:
					t.Errorf("%s: passed, want %q", c.name, c.want)
				case c.want != "" && !strings.Contains(err.Error(), c.want):
					t.Errorf("%s: %q, want %q", c.name, err, c.want)
				}
			}
		})
	}
}

func TestParseCosignKey(t *testing.T) {
	p256 := newCosignSigner(t, "p256")
	k1, err := parseCosignKey(p256.pub)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := parseCosignKey(append([]byte("# cosign.pub\n"), p256.pub...))
	if err != nil {
		t.Fatal(err)
	}
	if k1.Fingerprint() != k2.Fingerprint() {
		t.Errorf("same key, fingerprints %s and %s", k1.Fingerprint(), k2.Fingerprint())
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(p256.priv)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, err := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"empty", "", "not a PEM file"},
		{"text", "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3", "not a PEM file"},
		{"private key", string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: privDER})), "never cosign.key"},
		{"certificate", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), `PEM "CERTIFICATE" block`},
		{"garbage", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("nope")})), "does not parse"},
		{"two keys", string(p256.pub) + string(p256.pub), "more than one PEM block"},
		{"weak rsa", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: weakDER})), "RSA key of 1024 bits"},
	} {
		if _, err := parseCosignKey([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
