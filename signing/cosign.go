package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// This file is the cosign image signature check, for keys made with
// `cosign generate-key-pair` (or any PKIX public key) and images signed with
// `cosign sign --key`.
//
// What cosign stores, and so what is checked here: for an image whose
// manifest digest is sha256:<hex>, the tag sha256-<hex>.sig in the same
// repository names a "signature image" with one layer per signature. Each
// layer's blob is a simple signing payload, JSON of the form
//
//	{"critical": {"identity": {"docker-reference": "host/repo"},
//	              "image": {"docker-manifest-digest": "sha256:<hex>"},
//	              "type": "cosign container image signature"},
//	 "optional": {...}}
//
// and its annotation dev.cosignproject.cosign/signature is the base64
// signature over those exact payload bytes: ECDSA is ASN.1 DER over the
// SHA-256 of the payload (cosign's default hash whatever the curve; the
// curve's own hash, SHA-384 or SHA-512, is accepted too), Ed25519 signs the
// payload itself, RSA is PKCS #1 v1.5 (or PSS) over its SHA-256. The digest
// the payload names must be the one the agent pins: a valid signature over
// another image is no signature of this one.

// cosignPayloadType is the simple signing payload's critical.type for an
// image signature.
const cosignPayloadType = "cosign container image signature"

// cosignKey is a parsed cosign public key (cosign.pub, a PEM PUBLIC KEY).
type cosignKey struct {
	pub         crypto.PublicKey
	fingerprint string
}

// parseCosignKey parses the bytes of a cosign.pub file; its error is a config
// error's detail.
func parseCosignKey(pemBytes []byte) (*cosignKey, error) {
	block, rest := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("not a PEM file; give the cosign.pub that `cosign generate-key-pair` wrote (-----BEGIN PUBLIC KEY-----)")
	}
	if block.Type != "PUBLIC KEY" {
		if strings.Contains(block.Type, "PRIVATE") {
			return nil, fmt.Errorf("holds a %s, not a public key; give cosign.pub, never cosign.key", block.Type)
		}
		return nil, fmt.Errorf("holds a PEM %q block, not a PUBLIC KEY; give the cosign.pub that `cosign generate-key-pair` wrote", block.Type)
	}
	if b, _ := pem.Decode(rest); b != nil {
		return nil, errors.New("holds more than one PEM block; give one cosign public key")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the public key does not parse (%v); give the cosign.pub that `cosign generate-key-pair` or `cosign public-key` wrote", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("ECDSA key on curve %s: cosign keys are P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 are needed", k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("unsupported key type %T: cosign keys are ECDSA, Ed25519 or RSA", pub)
	}
	sum := sha256.Sum256(block.Bytes)
	return &cosignKey{pub: pub, fingerprint: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])}, nil
}

// cosignPayload is the part of the simple signing payload that is checked.
type cosignPayload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// verify checks that one of sigs, in either layout (see cosignbundle.go for
// Sigstore bundles), signs exactly digest ("sha256:...") with k.
// key names k (its fingerprint); err is why none did, worded for status.
// When several layers fail, the most telling reason is given: a valid
// signature over another digest, then a malformed payload or signature, then
// "signed by another key".
func (k *cosignKey) verify(digest string, sigs []ImageSignature) (key string, err error) {
	if len(sigs) == 0 {
		return k.fingerprint, fmt.Errorf("no cosign signature for %s; sign it with `cosign sign --key cosign.key <image>@%s`", digest, digest)
	}
	var best error
	rank := -1
	note := func(r int, e error) {
		if r > rank {
			best, rank = e, r
		}
	}
	for _, s := range sigs {
		if s.Bundle != nil {
			r, err := k.verifyBundle(digest, s.Bundle)
			if err == nil {
				return k.fingerprint, nil
			}
			note(r, err)
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s.Signature))
		if err != nil || len(raw) == 0 {
			note(1, errors.New("malformed signature: the dev.cosignproject.cosign/signature annotation is not base64"))
			continue
		}
		if !k.check(s.Payload, raw) {
			note(0, errors.New("signed by another key, or the payload was changed after signing"))
			continue
		}
		var p cosignPayload
		if err := json.Unmarshal(s.Payload, &p); err != nil {
			note(2, fmt.Errorf("malformed payload: %v", err))
			continue
		}
		if p.Critical.Type != cosignPayloadType {
			note(2, fmt.Errorf("malformed payload: type %q, not %q", p.Critical.Type, cosignPayloadType))
			continue
		}
		if got := p.Critical.Image.DockerManifestDigest; got != digest {
			if got == "" {
				note(2, errors.New("malformed payload: it names no docker-manifest-digest"))
			} else {
				note(3, fmt.Errorf("signature is for %s, not the pinned %s", got, digest))
			}
			continue
		}
		return k.fingerprint, nil
	}
	return k.fingerprint, best
}

// check reports whether sig is k's signature over payload, as cosign makes
// it for k's key type.
func (k *cosignKey) check(payload, sig []byte) bool {
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(payload)
		if ecdsa.VerifyASN1(pub, sum[:], sig) {
			return true
		}
		switch pub.Curve {
		case elliptic.P384():
			sum := sha512.Sum384(payload)
			return ecdsa.VerifyASN1(pub, sum[:], sig)
		case elliptic.P521():
			sum := sha512.Sum512(payload)
			return ecdsa.VerifyASN1(pub, sum[:], sig)
		}
		return false
	case ed25519.PublicKey:
		return ed25519.Verify(pub, payload, sig)
	case *rsa.PublicKey:
		sum := sha256.Sum256(payload)
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], sig, nil) == nil
	}
	return false
}

// Fingerprint is k's name in status: "SHA256:" and the unpadded base64 of
// the SHA-256 of its DER encoding, as OpenSSH writes key fingerprints.
func (k *cosignKey) Fingerprint() string { return k.fingerprint }
