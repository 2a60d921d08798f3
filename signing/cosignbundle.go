package signing

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// This file is the cosign image signature check for the Sigstore bundle
// layout, which cosign 3 writes by default (`cosign sign --key`; cosign 2
// with --new-bundle-format).
//
// What cosign stores: an OCI artifact in the image's repository whose
// subject is the signed image (found through the registry's referrers API,
// or the sha256-<hex> referrers tag where there is none), with one layer,
// the bundle's JSON. For a key signature the bundle is
//
//	{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//	 "verificationMaterial": {"publicKey": {"hint": "<base64 SHA-256 of the key's DER>"},
//	                          "tlogEntries": [...]},   // none with --tlog-upload=false
//	 "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json",
//	                  "payload": "<base64 statement>",
//	                  "signatures": [{"sig": "<base64>"}]}}
//
// and the statement is an in-toto statement about the image's digest:
//
//	{"_type": "https://in-toto.io/Statement/v1",
//	 "subject": [{"digest": {"sha256": "<hex>"}}],
//	 "predicateType": "https://sigstore.dev/cosign/sign/v1",
//	 "predicate": {}}
//
// The signature is over the envelope's DSSE pre-authentication encoding
// (PAE) of payloadType and payload, hashed as for the legacy layout. It is
// checked with the configured key, then the statement must be a cosign
// signature (not some other attestation made with the key) whose subject
// names the digest the agent pins. As with the legacy layout, the key is
// the trust: transparency log entries and timestamps are not checked (the
// agent has no trusted root for a key setup and does not go online).

const (
	// bundleMediaTypePrefix begins every Sigstore bundle media type
	// (application/vnd.dev.sigstore.bundle.v0.3+json,
	// application/vnd.dev.sigstore.bundle+json;version=0.2).
	bundleMediaTypePrefix = "application/vnd.dev.sigstore.bundle"
	// inTotoPayloadType is the DSSE payload type of an in-toto statement.
	inTotoPayloadType = "application/vnd.in-toto+json"
	// cosignSignPredicate is the predicate type of `cosign sign`'s statement.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
)

// inTotoStatement is the part of an in-toto statement that is checked.
type inTotoStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
}

// verifyBundle checks that the Sigstore bundle b is k's cosign signature of
// exactly digest ("sha256:<hex>"). On failure rank orders its reason as
// verify does: 0 another key, 1 a malformed signature, 2 a malformed or
// unexpected statement, 3 a valid signature over another digest.
func (k *cosignKey) verifyBundle(digest string, b []byte) (rank int, err error) {
	var pb protobundle.Bundle
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, &pb); err != nil {
		return 1, fmt.Errorf("malformed Sigstore bundle: %v", err)
	}
	if !strings.HasPrefix(pb.GetMediaType(), bundleMediaTypePrefix) {
		return 1, fmt.Errorf("malformed Sigstore bundle: media type %q", pb.GetMediaType())
	}
	env := pb.GetDsseEnvelope()
	if env == nil {
		return 1, errors.New("malformed Sigstore bundle: it holds no DSSE envelope; `cosign sign` signs an image with an in-toto statement")
	}
	if !k.checkEnvelope(env) {
		if vm := pb.GetVerificationMaterial(); vm.GetCertificate() != nil || vm.GetX509CertificateChain() != nil {
			// A keyless signature: its key is the certificate's. Say so
			// rather than "another key".
			return 0, errors.New("signed keylessly (the bundle holds a certificate), not with the key; sign with `cosign sign --key cosign.key`")
		}
		return 0, errors.New("signed by another key, or the bundle's statement was changed after signing")
	}
	if env.GetPayloadType() != inTotoPayloadType {
		return 2, fmt.Errorf("malformed statement: payload type %q, not %q", env.GetPayloadType(), inTotoPayloadType)
	}
	var st inTotoStatement
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return 2, fmt.Errorf("malformed statement: %v", err)
	}
	if !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") {
		return 2, fmt.Errorf("malformed statement: type %q is not an in-toto statement", st.Type)
	}
	if st.PredicateType != cosignSignPredicate {
		return 2, fmt.Errorf("a %q attestation, not a cosign signature (predicate type %s)", st.PredicateType, cosignSignPredicate)
	}
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return 2, fmt.Errorf("the pinned digest %q has no algorithm", digest)
	}
	other := ""
	for _, s := range st.Subject {
		if got, ok := s.Digest[alg]; ok {
			if got == hex {
				return 0, nil
			}
			if other == "" {
				other = alg + ":" + got
			}
		}
	}
	if other == "" {
		return 2, fmt.Errorf("malformed statement: no subject has a %s digest", alg)
	}
	return 3, fmt.Errorf("signature is for %s, not the pinned %s", other, digest)
}

// checkEnvelope reports whether one of env's signatures is k's over the
// DSSE pre-authentication encoding of its payload type and payload.
func (k *cosignKey) checkEnvelope(env *protodsse.Envelope) bool {
	pae := dssePAE(env.GetPayloadType(), env.GetPayload())
	for _, s := range env.GetSignatures() {
		if len(s.GetSig()) > 0 && k.check(pae, s.GetSig()) {
			return true
		}
	}
	return false
}

// dssePAE is DSSE's pre-authentication encoding, the bytes a DSSE signature
// signs: "DSSEv1 <len(type)> <type> <len(payload)> <payload>".
func dssePAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, 32+len(payloadType)+len(payload))
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}
