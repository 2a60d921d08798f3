package signing

import (
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
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
	// verifiers has one verifier per trusted root in the file.
	verifiers []*verify.Verifier
	identity  verify.CertificateIdentity
	// issuer and san are the expected identity, for messages.
	issuer, san string
}

// loadSigstore parses s's trusted root (the JSON of trusted_root.json) and
// checks its issuer and identity settings; its error is a config error's
// detail. The file may also hold several roots, one JSON document a line,
// as `gh attestation trusted-root` writes them (Sigstore's public good
// instance and GitHub's own); a bundle then passes if it verifies under any
// of them.
//
// What a bundle must prove follows from its root: when the root names a
// transparency log (Sigstore's public good instance, `cosign sign-blob`,
// GitHub attestations of public repositories), a verified entry in one of
// its logs, whose integrated time dates the certificate; when it names only
// timestamp authorities (GitHub attestations of private repositories), an
// RFC 3161 timestamp from one of them. Nothing is fetched: no TUF update, no
// log lookup.
//
// IdentityRegexp and IssuerRegexp are Go regular expressions matched as
// cosign's --certificate-identity-regexp and --certificate-oidc-issuer-regexp
// match theirs (both cosign and sigstore-go call MatchString): unanchored, so
// a pattern matches any value containing a match unless it is written with
// ^ and $.
func loadSigstore(s SigstoreSettings) (*sigstoreTrust, error) {
	if err := s.checkIdentity(); err != nil {
		return nil, err
	}
	roots, err := parseTrustedRoots(s.TrustedRoot.Data)
	if err != nil {
		return nil, err
	}
	t := &sigstoreTrust{issuer: s.Issuer, san: s.Identity}
	for i, tr := range roots {
		where := "trusted root"
		if len(roots) > 1 {
			where = fmt.Sprintf("trusted root on line %d", i+1)
		}
		if len(tr.FulcioCertificateAuthorities()) == 0 {
			return nil, fmt.Errorf("%s names no certificate authority: it cannot vouch for a keyless signer", where)
		}
		var opts []verify.VerifierOption
		switch {
		case len(tr.RekorLogs()) > 0:
			opts = []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
		case len(tr.TimestampingAuthorities()) > 0:
			opts = []verify.VerifierOption{verify.WithSignedTimestamps(1)}
		default:
			return nil, fmt.Errorf("%s names neither a transparency log nor a timestamp authority: the time of a signature could not be checked", where)
		}
		v, err := verify.NewVerifier(tr, opts...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		t.verifiers = append(t.verifiers, v)
	}
	san, sanRegexp := s.Identity, s.IdentityRegexp
	switch {
	case sanRegexp != "":
		t.san = "matching identity_regexp " + quotePattern(sanRegexp)
	case workflowWithoutRef(san):
		san, sanRegexp = "", "^"+regexp.QuoteMeta(s.Identity)+"@refs/(tags|heads)/.+$"
		t.san = s.Identity + "@refs/tags/* or @refs/heads/*"
	}
	if s.IssuerRegexp != "" {
		t.issuer = "an issuer matching issuer_regexp " + quotePattern(s.IssuerRegexp)
	}
	t.identity, err = verify.NewShortCertificateIdentity(s.Issuer, s.IssuerRegexp, san, sanRegexp)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return t, nil
}

// checkIdentity checks that exactly one of issuer and issuer_regexp, and
// one of identity and identity_regexp, is set, and that the regexps
// compile. Decode reports the same problems at their attributes.
func (s SigstoreSettings) checkIdentity() error {
	pairs := []struct {
		exact, pattern, name, what string
	}{
		{s.Issuer, s.IssuerRegexp, "issuer", "set issuer to the OIDC issuer of the signer's certificate (GitHub Actions: https://token.actions.githubusercontent.com), or issuer_regexp to a pattern for it"},
		{s.Identity, s.IdentityRegexp, "identity", "set identity to the signer's certificate identity (an email address, or for GitHub Actions the workflow's URI, https://github.com/<owner>/<repo>/.github/workflows/<file>, with or without @<ref>), or identity_regexp to a pattern for it"},
	}
	for _, p := range pairs {
		switch {
		case p.exact != "" && p.pattern != "":
			return fmt.Errorf("both %s and %s_regexp are set: keep one", p.name, p.name)
		case p.pattern != "":
			if _, err := regexp.Compile(p.pattern); err != nil {
				return fmt.Errorf("%s_regexp %s: %v", p.name, quotePattern(p.pattern), err)
			}
		case strings.TrimSpace(p.exact) == "":
			return fmt.Errorf("%s is empty: %s", p.name, p.what)
		}
	}
	return nil
}

// quotePattern shows a regexp in double quotes without escaping it, so
// that its backslashes read as written.
func quotePattern(re string) string { return `"` + re + `"` }

// workflowWithoutRef tells whether identity is a GitHub Actions workflow
// named without its ref ("https://github.com/org/app/.github/workflows/
// release.yml"). The certificate of a workflow names it with the ref it ran
// for ("...release.yml@refs/tags/v1.2.0"), different at every release, so
// such an identity matches the workflow run for any tag or branch (as
// `gh attestation verify --signer-workflow`), not for a pull request's ref.
// An identity with a ref, or an email address, is matched exactly.
func workflowWithoutRef(identity string) bool {
	return strings.HasPrefix(identity, "https://") && !strings.Contains(identity, "@") &&
		strings.Contains(identity, "/.github/workflows/")
}

// parseTrustedRoots reads one trusted root, or several as JSON Lines.
func parseTrustedRoots(data []byte) ([]*root.TrustedRoot, error) {
	const what = "trusted root is not a Sigstore trusted root (trusted_root.json, as Sigstore's TUF repository or `gh attestation trusted-root` has it)"
	one, err := root.NewTrustedRootFromJSON(data)
	if err == nil {
		return []*root.TrustedRoot{one}, nil
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var roots []*root.TrustedRoot
	for i, line := range lines {
		tr, lerr := root.NewTrustedRootFromJSON([]byte(line))
		if lerr != nil {
			return nil, fmt.Errorf("%s: line %d: %w", what, i+1, lerr)
		}
		roots = append(roots, tr)
	}
	return roots, nil
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

	// A message signature's artifact is hashed once, here, whatever the
	// number of roots. Under a root that does not know the bundle's log,
	// timestamp authority or certificate authority, Verify fails before it
	// reads the artifact. Of the roots' refusals, the one that got furthest
	// is shown.
	digest, err := messageDigest(&b, cert.PublicKey, io.NewSectionReader(artifact, 0, size))
	if err != nil {
		return key, err
	}
	var why error
	best := -1
	for _, v := range t.verifiers {
		policy := digest
		if policy == nil {
			policy = verify.WithArtifact(io.NewSectionReader(artifact, 0, size))
		}
		_, err := v.Verify(&b, verify.NewPolicy(policy, verify.WithCertificateIdentity(t.identity)))
		if err == nil {
			return key, nil
		}
		if stage, e := t.why(summary, err); stage > best {
			best, why = stage, e
		}
	}
	return key, why
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

// messageDigest is the artifact policy for a message signature: the
// artifact's digest, computed here in one streaming pass. WithArtifact
// would hash it twice (once for the signature, once to compare with the
// bundle's digest), and for an ECDSA P-384 or P-521 certificate it would
// read the whole artifact into memory. It is nil for a DSSE envelope
// (sigstore-go hashes the artifact once to compare it with the statement's
// subjects) and for an Ed25519 key, which is checked over the artifact
// itself: those are checked WithArtifact.
func messageDigest(b *bundle.Bundle, pub crypto.PublicKey, artifact io.Reader) (verify.ArtifactPolicyOption, error) {
	msg := b.GetMessageSignature()
	if _, ed := pub.(ed25519.PublicKey); msg == nil || ed {
		return nil, nil
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

// why words a verification failure for status, with the step that failed
// (the larger, the further the bundle got). sigstore-go reports its steps by
// message prefix; the step decides the wording, its detail follows.
func (t *sigstoreTrust) why(got certificate.Summary, err error) (int, error) {
	var mismatch *verify.ErrNoMatchingCertificateIdentity
	if errors.As(err, &mismatch) {
		e := fmt.Errorf("certificate identity %s issued by %s is not the expected identity %s issued by %s",
			got.SubjectAlternativeName, got.Issuer, t.san, t.issuer)
		// Say which of the two failed.
		var failed []string
		if t.identity.SubjectAlternativeName.Verify(got) != nil {
			failed = append(failed, "the identity does not match")
		}
		if t.identity.Issuer.Verify(got) != nil {
			failed = append(failed, "the issuer does not match")
		}
		if len(failed) > 0 {
			e = fmt.Errorf("%w: %s", e, strings.Join(failed, " and "))
		}
		return 5, e
	}
	msg := err.Error()
	steps := []struct{ prefix, why string }{
		{"failed to verify log inclusion", "not logged in a transparency log the trusted root names (or its entry there is not valid)"},
		{"failed to verify timestamps", "no trusted time of signing (transparency log entry or timestamp from an authority the trusted root names)"},
		{"failed to verify leaf certificate", "the certificate was not issued by a certificate authority the trusted root names, or not valid when signed"},
		{"failed to verify signature", "the bundle does not match the artifact"},
	}
	for i, s := range steps {
		if detail, ok := strings.CutPrefix(msg, s.prefix+": "); ok {
			return i + 1, fmt.Errorf("%s: %s", s.why, detail)
		}
	}
	return 0, fmt.Errorf("bundle rejected: %s", msg)
}
