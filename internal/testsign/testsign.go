// Package testsign makes Sigstore material for tests: a Sigstore of the
// test's own (sigstore-go's VirtualSigstore: a Fulcio CA, a Rekor log key, a
// timestamp authority, all made in the test), its trusted root as
// trusted_root.json is written, and bundles as `cosign sign-blob --bundle`
// (a message signature) and GitHub artifact attestations (a DSSE envelope
// over an in-toto statement) write them (protobuf JSON, bundle v0.3).
package testsign

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
)

// TrustedRoot is vs's trusted root as JSON. withLogs false leaves out the
// transparency logs, as GitHub's trusted root for private repositories
// (certificate and timestamp authorities only).
func TrustedRoot(t testing.TB, vs *ca.VirtualSigstore, withLogs bool) []byte {
	t.Helper()
	// The virtual logs' IDs are the hex of the key ID; a trusted root holds
	// the raw bytes.
	rawIDs := func(logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
		out := map[string]*root.TransparencyLog{}
		for id, l := range logs {
			c := *l
			raw, err := hex.DecodeString(id)
			if err != nil {
				t.Fatal(err)
			}
			c.ID = raw
			out[id] = &c
		}
		return out
	}
	rekor := rawIDs(vs.RekorLogs())
	if !withLogs {
		rekor = nil
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(),
		rawIDs(vs.CTLogs()), vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	j, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// Parts says what a test bundle carries beside the signature.
type Parts struct {
	Tlog      bool // a Rekor entry with its inclusion proof and promise
	Timestamp bool // the timestamp authority's RFC 3161 timestamp
}

// Bundle writes te as a v0.3 bundle, as cosign and GitHub do.
func Bundle(t testing.TB, vs *ca.VirtualSigstore, te *ca.TestEntity, parts Parts) []byte {
	t.Helper()
	vc, err := te.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{
			Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw},
		},
		TimestampVerificationData: &protobundle.TimestampVerificationData{},
	}
	b := &protobundle.Bundle{
		MediaType:            "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: vm,
	}
	sc, err := te.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	kind := "hashedrekord"
	if env := sc.EnvelopeContent(); env != nil {
		kind = "dsse"
		raw := env.RawEnvelope()
		payload, err := base64.StdEncoding.DecodeString(raw.Payload)
		if err != nil {
			t.Fatal(err)
		}
		pe := &protodsse.Envelope{Payload: payload, PayloadType: raw.PayloadType}
		for _, s := range raw.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil {
				t.Fatal(err)
			}
			pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
		}
		b.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe}
	} else {
		msg := sc.MessageSignatureContent()
		alg := protocommon.HashAlgorithm(protocommon.HashAlgorithm_value[msg.DigestAlgorithm()])
		b.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: alg, Digest: msg.Digest()},
			Signature:     msg.Signature(),
		}}
	}
	if parts.Tlog {
		entries, err := te.TlogEntries()
		if err != nil {
			t.Fatal(err)
		}
		vm.TlogEntries = append(vm.TlogEntries, logEntry(t, vs, entries[0], kind))
	}
	if parts.Timestamp {
		tss, err := te.Timestamps()
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range tss {
			vm.TimestampVerificationData.Rfc3161Timestamps = append(vm.TimestampVerificationData.Rfc3161Timestamps,
				&protocommon.RFC3161SignedTimestamp{SignedTimestamp: ts})
		}
	}
	j, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// logEntry is e as Rekor returns it for a v0.3 bundle: at index 0 of a
// one-entry log, with the signed entry timestamp and the inclusion proof
// against a checkpoint the log key signed.
func logEntry(t testing.TB, vs *ca.VirtualSigstore, e *tlog.Entry, kind string) *protorekor.TransparencyLogEntry {
	t.Helper()
	body := e.TransparencyLogEntry().GetCanonicalizedBody()
	logID, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	rawID, err := hex.DecodeString(logID)
	if err != nil {
		t.Fatal(err)
	}
	integrated := e.IntegratedTime().Unix()
	set, err := vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(body),
		IntegratedTime: integrated,
		LogIndex:       0,
		LogID:          logID,
	})
	if err != nil {
		t.Fatal(err)
	}
	proof, err := vs.GetInclusionProof(body)
	if err != nil {
		t.Fatal(err)
	}
	rootHash, err := hex.DecodeString(*proof.RootHash)
	if err != nil {
		t.Fatal(err)
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          0,
		LogId:             &protocommon.LogId{KeyId: rawID},
		KindVersion:       &protorekor.KindVersion{Kind: kind, Version: "0.0.1"},
		IntegratedTime:    integrated,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		CanonicalizedBody: body,
		InclusionProof: &protorekor.InclusionProof{
			LogIndex:   0,
			RootHash:   rootHash,
			TreeSize:   *proof.TreeSize,
			Checkpoint: &protorekor.Checkpoint{Envelope: *proof.Checkpoint},
		},
	}
}

// Statement is an in-toto statement naming artifact by its sha256, as
// GitHub's build provenance attestations do.
func Statement(t testing.TB, artifact []byte) []byte {
	t.Helper()
	d := sha256.Sum256(artifact)
	j, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "app.tar.gz", "digest": map[string]string{"sha256": hex.EncodeToString(d[:])}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate":     map[string]any{"buildDefinition": map[string]any{"buildType": "https://actions.github.io/buildtypes/workflow/v1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// NewVirtualSigstore is a Sigstore made for the test; sign with its Sign
// (a message signature) or Attest (a DSSE envelope).
func NewVirtualSigstore(t testing.TB) *ca.VirtualSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
