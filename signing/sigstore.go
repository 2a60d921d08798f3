package signing

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// This file is the Sigstore bundle check: a keyless signature (a short-lived
// Fulcio certificate naming who signed, and a transparency log entry or a
// timestamp proving when) verified offline against a trusted root file.

// sigstoreTrust is a trusted root and the identity a bundle's certificate
// must name.
type sigstoreTrust struct {
	verifier *verify.Verifier
	identity verify.CertificateIdentity
	// issuer and san are the expected identity, for messages.
	issuer, san string
}

// loadSigstore parses a trusted root (the JSON of trusted_root.json) and
// checks issuer and identity; its error is a config error's detail.
//
// What a bundle must prove follows from the root: when it names a
// transparency log (Sigstore's public good instance, `cosign sign-blob`,
// GitHub attestations of public repositories), a verified entry in one of
// its logs, whose integrated time dates the certificate; when it names only
// timestamp authorities (GitHub attestations of private repositories), an
// RFC 3161 timestamp from one of them. Nothing is fetched: no TUF update, no
// log lookup.
func loadSigstore(trustedRoot []byte, issuer, identity string) (*sigstoreTrust, error) {
	if strings.TrimSpace(issuer) == "" {
		return nil, errors.New("issuer is empty: set it to the OIDC issuer of the signer's certificate (GitHub Actions: https://token.actions.githubusercontent.com)")
	}
	if strings.TrimSpace(identity) == "" {
		return nil, errors.New("identity is empty: set it to the signer's certificate identity (an email address, or the workflow URI for GitHub Actions)")
	}
	tr, err := root.NewTrustedRootFromJSON(trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("trusted root is not a Sigstore trusted root (trusted_root.json, as `cosign trusted-root create` or `gh attestation trusted-root` writes it): %w", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return nil, errors.New("trusted root names no certificate authority: it cannot vouch for a keyless signer")
	}
	var opts []verify.VerifierOption
	switch {
	case len(tr.RekorLogs()) > 0:
		opts = []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	case len(tr.TimestampingAuthorities()) > 0:
		opts = []verify.VerifierOption{verify.WithSignedTimestamps(1)}
	default:
		return nil, errors.New("trusted root names neither a transparency log nor a timestamp authority: the time of a signature could not be checked")
	}
	v, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	id, err := verify.NewShortCertificateIdentity(issuer, "", identity, "")
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return &sigstoreTrust{verifier: v, identity: id, issuer: issuer, san: identity}, nil
}

// verify checks bundle (the .sigstore.json bytes) over the artifact. key
// names the certificate identity that signed (or was found); err is why it
// failed, worded for status.
//
// Both kinds of bundle are accepted: a message signature over the artifact
// (`cosign sign-blob --bundle`), and a DSSE envelope holding an in-toto
// statement whose subject is the artifact's digest (GitHub artifact
// attestations, `cosign attest-blob`).
func (t *sigstoreTrust) verify(artifact io.ReaderAt, size int64, bundleJSON []byte) (key string, err error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		if legacyCosignBundle(bundleJSON) {
			return "", errors.New("malformed bundle: this is cosign's older bundle format, not a Sigstore bundle; sign with `cosign sign-blob --new-bundle-format --bundle <artifact>.sigstore.json`")
		}
		return "", fmt.Errorf("malformed bundle: %v", err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return "", fmt.Errorf("malformed bundle: %v", err)
	}
	cert := vc.Certificate()
	if cert == nil {
		return "", errors.New("the bundle is signed with a key, not a Sigstore certificate: keyless verification needs a certificate naming the signer")
	}
	// The certificate's identity names the signer in status even when the
	// check fails; it is trusted only once Verify has passed.
	summary, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return "", fmt.Errorf("malformed bundle: certificate: %v", err)
	}
	key = summary.SubjectAlternativeName + " (issuer " + summary.Issuer + ")"

	artifactPolicy, err := artifactPolicy(&b, cert.PublicKey, io.NewSectionReader(artifact, 0, size))
	if err != nil {
		return key, err
	}
	_, err = t.verifier.Verify(&b, verify.NewPolicy(artifactPolicy, verify.WithCertificateIdentity(t.identity)))
	if err != nil {
		return key, t.why(summary, err)
	}
	return key, nil
}

// legacyCosignBundle tells whether b is what `cosign sign-blob --bundle`
// wrote before the Sigstore bundle format: a signature, a PEM certificate
// and a Rekor entry under their own keys.
func legacyCosignBundle(b []byte) bool {
	var legacy struct {
		Base64Signature string          `json:"base64Signature"`
		RekorBundle     json.RawMessage `json:"rekorBundle"`
	}
	return json.Unmarshal(b, &legacy) == nil && legacy.Base64Signature != "" && legacy.RekorBundle != nil
}

// artifactPolicy says how the artifact is checked. A DSSE envelope is
// checked WithArtifact: sigstore-go hashes the reader once and compares the
// digest with the statement's subjects. A message signature is checked
// against the artifact's digest, computed here in one streaming pass:
// WithArtifact would hash it twice (once for the signature, once to compare
// with the bundle's digest), and for an ECDSA P-384 or P-521 certificate it
// would read the whole artifact into memory. Ed25519 signatures can only be
// checked over the artifact itself, so they stay WithArtifact.
func artifactPolicy(b *bundle.Bundle, pub crypto.PublicKey, artifact io.Reader) (verify.ArtifactPolicyOption, error) {
	msg := b.GetMessageSignature()
	if _, ed := pub.(ed25519.PublicKey); msg == nil || ed {
		return verify.WithArtifact(artifact), nil
	}
	alg := msg.GetMessageDigest().GetAlgorithm().String()
	var h crypto.Hash
	switch alg {
	case "SHA2_256":
		h = crypto.SHA256
	case "SHA2_384":
		h = crypto.SHA384
	case "SHA2_512":
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("malformed bundle: unsupported message digest algorithm %s", alg)
	}
	d := h.New()
	if _, err := io.Copy(d, artifact); err != nil {
		return nil, fmt.Errorf("reading the artifact: %w", err)
	}
	return verify.WithArtifactDigest(alg, d.Sum(nil)), nil
}

// why words a verification failure for status. sigstore-go reports its
// steps by message prefix; the step decides the wording, its detail follows.
func (t *sigstoreTrust) why(got certificate.Summary, err error) error {
	var mismatch *verify.ErrNoMatchingCertificateIdentity
	if errors.As(err, &mismatch) {
		return fmt.Errorf("certificate identity %s issued by %s is not the expected identity %s issued by %s",
			got.SubjectAlternativeName, got.Issuer, t.san, t.issuer)
	}
	msg := err.Error()
	detail := func(prefix string) string { return strings.TrimPrefix(msg, prefix+": ") }
	switch {
	case strings.HasPrefix(msg, "failed to verify log inclusion"):
		return fmt.Errorf("not logged in the transparency log the trusted root names: %s", detail("failed to verify log inclusion"))
	case strings.HasPrefix(msg, "failed to verify timestamps"):
		return fmt.Errorf("no trusted time of signing (transparency log entry or timestamp from an authority the trusted root names): %s", detail("failed to verify timestamps"))
	case strings.HasPrefix(msg, "failed to verify leaf certificate"):
		return fmt.Errorf("the certificate was not issued by a certificate authority the trusted root names, or not valid when signed: %s", detail("failed to verify leaf certificate"))
	case strings.HasPrefix(msg, "failed to verify signature"):
		return fmt.Errorf("the bundle does not match the artifact: %s", detail("failed to verify signature"))
	}
	return fmt.Errorf("bundle rejected: %s", msg)
}
