package signing

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/dewy-agent/dewy-agent/internal/testsign"
)

// These tests run a Sigstore of their own and build bundles as cosign and
// GitHub write them, with internal/testsign.

const (
	testSigner = "release@example.com"
	testIssuer = "https://issuer.example.com"
)

func randomArtifact(t testing.TB, n int) []byte {
	t.Helper()
	a := make([]byte, n)
	if _, err := rand.Read(a); err != nil {
		t.Fatal(err)
	}
	return a
}

func mustLoadSigstore(t testing.TB, rootJSON []byte, issuer, identity string) *sigstoreTrust {
	t.Helper()
	st, err := loadExact(rootJSON, issuer, identity)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// loadExact loads a root with an exact issuer and identity.
func loadExact(rootJSON []byte, issuer, identity string) (*sigstoreTrust, error) {
	return loadSigstore(SigstoreSettings{TrustedRoot: KeyFile{Data: rootJSON}, Issuer: issuer, Identity: identity})
}

func TestSigstoreVerify(t *testing.T) {
	vs := testsign.NewVirtualSigstore(t)
	other := testsign.NewVirtualSigstore(t)
	rootJSON := testsign.TrustedRoot(t, vs, true)
	artifact := randomArtifact(t, 4096)
	tampered := bytes.Clone(artifact)
	tampered[100] ^= 1

	signed, err := vs.Sign(testSigner, testIssuer, artifact)
	if err != nil {
		t.Fatal(err)
	}
	attested, err := vs.Attest(testSigner, testIssuer, testsign.Statement(t, artifact))
	if err != nil {
		t.Fatal(err)
	}
	// Logged 20 minutes after the signing certificate expired.
	signedLate, err := vs.SignAtTime(testSigner, testIssuer, artifact, time.Now().Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	signedElsewhere, err := other.Sign(testSigner, testIssuer, artifact)
	if err != nil {
		t.Fatal(err)
	}
	logged := testsign.Parts{Tlog: true}
	messageBundle := testsign.Bundle(t, vs, signed, logged)
	dsseBundle := testsign.Bundle(t, vs, attested, logged)
	wantKey := testSigner + " (issuer " + testIssuer + ")"

	cases := []struct {
		name             string
		issuer, identity string
		artifact         []byte
		bundle           []byte
		key              string // "" for none
		err              string // "" for a pass
	}{
		{name: "message signature", bundle: messageBundle, key: wantKey},
		{name: "attestation", bundle: dsseBundle, key: wantKey},
		{name: "wrong identity", identity: "someone@example.com", bundle: messageBundle, key: wantKey,
			err: "certificate identity release@example.com issued by https://issuer.example.com is not the expected identity someone@example.com issued by https://issuer.example.com"},
		{name: "wrong issuer", issuer: "https://token.actions.githubusercontent.com", bundle: dsseBundle, key: wantKey,
			err: "is not the expected identity release@example.com issued by https://token.actions.githubusercontent.com"},
		{name: "tampered artifact", artifact: tampered, bundle: messageBundle, key: wantKey, err: "the bundle does not match the artifact"},
		{name: "tampered attested artifact", artifact: tampered, bundle: dsseBundle, key: wantKey, err: "the bundle does not match the artifact"},
		{name: "artifact cut short", artifact: artifact[:len(artifact)-1], bundle: messageBundle, key: wantKey, err: "the bundle does not match the artifact"},
		{name: "signed under another root", bundle: testsign.Bundle(t, other, signedElsewhere, logged), key: wantKey,
			err: "not logged in a transparency log the trusted root names"},
		{name: "logged after the certificate expired", bundle: testsign.Bundle(t, vs, signedLate, logged), key: wantKey,
			err: "(or its entry there is not valid): integrated time outside certificate validity"},
		{name: "not logged", bundle: testsign.Bundle(t, vs, signed, testsign.Parts{}), key: wantKey,
			err: "not logged in a transparency log the trusted root names"},
		{name: "timestamp without log", bundle: testsign.Bundle(t, vs, signed, testsign.Parts{Timestamp: true}), key: wantKey,
			err: "not logged in a transparency log the trusted root names"},
		{name: "not JSON", bundle: []byte("-----BEGIN SIGNATURE-----"), err: "malformed bundle: "},
		{name: "empty object", bundle: []byte("{}"), err: "malformed bundle: "},
		{name: "truncated", bundle: messageBundle[:len(messageBundle)/2], err: "malformed bundle: "},
		{name: "legacy cosign bundle", bundle: []byte(`{"base64Signature":"AAAA","cert":"","rekorBundle":{}}`), err: "malformed bundle: this is cosign's older bundle format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			issuer, identity, a := testIssuer, testSigner, artifact
			if c.issuer != "" {
				issuer = c.issuer
			}
			if c.identity != "" {
				identity = c.identity
			}
			if c.artifact != nil {
				a = c.artifact
			}
			st := mustLoadSigstore(t, rootJSON, issuer, identity)
			key, err := st.verify(bytes.NewReader(a), int64(len(a)), c.bundle)
			if key != c.key {
				t.Errorf("key = %q, want %q", key, c.key)
			}
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case c.err != "" && err == nil:
				t.Fatalf("verify passed, want an error containing %q", c.err)
			case c.err != "" && !strings.Contains(err.Error(), c.err):
				t.Fatalf("verify: %v\nwant it to contain %q", err, c.err)
			}
		})
	}
}

// GitHub's trusted root for attestations of private repositories names no
// transparency log: its bundles carry an RFC 3161 timestamp instead.
func TestSigstoreTimestampAuthorityOnly(t *testing.T) {
	vs := testsign.NewVirtualSigstore(t)
	artifact := randomArtifact(t, 4096)
	attested, err := vs.Attest(testSigner, testIssuer, testsign.Statement(t, artifact))
	if err != nil {
		t.Fatal(err)
	}
	st := mustLoadSigstore(t, testsign.TrustedRoot(t, vs, false), testIssuer, testSigner)
	if _, err := st.verify(bytes.NewReader(artifact), int64(len(artifact)),
		testsign.Bundle(t, vs, attested, testsign.Parts{Timestamp: true})); err != nil {
		t.Fatalf("timestamped attestation: %v", err)
	}
	_, err = st.verify(bytes.NewReader(artifact), int64(len(artifact)), testsign.Bundle(t, vs, attested, testsign.Parts{}))
	if err == nil || !strings.Contains(err.Error(), "no trusted time of signing") {
		t.Fatalf("attestation without a timestamp: %v, want no trusted time of signing", err)
	}
	other := testsign.NewVirtualSigstore(t)
	elsewhere, err := other.Attest(testSigner, testIssuer, testsign.Statement(t, artifact))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.verify(bytes.NewReader(artifact), int64(len(artifact)), testsign.Bundle(t, other, elsewhere, testsign.Parts{Timestamp: true}))
	if err == nil || !strings.Contains(err.Error(), "no trusted time of signing") {
		t.Fatalf("attestation timestamped under another root: %v, want no trusted time of signing", err)
	}
}

// Certificate keys other than P-256: P-384, for which sigstore-go would
// read the artifact into memory (artifactPolicy hashes it as for any other
// key), and RSA. (Ed25519 is not here: VirtualSigstore cannot sign with it.)
func TestSigstoreKeyTypes(t *testing.T) {
	for _, alg := range []protocommon.PublicKeyDetails{
		protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384,
		protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256,
	} {
		t.Run(alg.String(), func(t *testing.T) {
			vs, err := ca.NewVirtualSigstoreWithSigningAlg(alg)
			if err != nil {
				t.Fatal(err)
			}
			artifact := randomArtifact(t, 4096)
			signed, err := vs.Sign(testSigner, testIssuer, artifact)
			if err != nil {
				t.Fatal(err)
			}
			b := testsign.Bundle(t, vs, signed, testsign.Parts{Tlog: true})
			st := mustLoadSigstore(t, testsign.TrustedRoot(t, vs, true), testIssuer, testSigner)
			if _, err := st.verify(bytes.NewReader(artifact), int64(len(artifact)), b); err != nil {
				t.Fatalf("message signature: %v", err)
			}
			artifact[0] ^= 1
			_, err = st.verify(bytes.NewReader(artifact), int64(len(artifact)), b)
			if err == nil || !strings.Contains(err.Error(), "the bundle does not match the artifact") {
				t.Fatalf("tampered artifact: %v, want does not match", err)
			}
		})
	}
}

func TestLoadSigstoreErrors(t *testing.T) {
	vs := testsign.NewVirtualSigstore(t)
	good := testsign.TrustedRoot(t, vs, true)
	var noCA map[string]any
	if err := json.Unmarshal(good, &noCA); err != nil {
		t.Fatal(err)
	}
	delete(noCA, "certificateAuthorities")
	noCAJSON, err := json.Marshal(noCA)
	if err != nil {
		t.Fatal(err)
	}
	var bare map[string]any
	if err := json.Unmarshal(good, &bare); err != nil {
		t.Fatal(err)
	}
	delete(bare, "tlogs")
	delete(bare, "timestampAuthorities")
	bareJSON, err := json.Marshal(bare)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name             string
		root             []byte
		issuer, identity string
		err              string
	}{
		{"garbage root", []byte("not json at all"), testIssuer, testSigner, "trusted root is not a Sigstore trusted root"},
		{"empty root", nil, testIssuer, testSigner, "trusted root is not a Sigstore trusted root"},
		{"wrong media type", []byte(`{"mediaType":"application/json"}`), testIssuer, testSigner, "trusted root is not a Sigstore trusted root"},
		{"a bundle given as root", []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), testIssuer, testSigner, "trusted root is not a Sigstore trusted root"},
		{"no certificate authority", noCAJSON, testIssuer, testSigner, "names no certificate authority"},
		{"no log, no timestamp authority", bareJSON, testIssuer, testSigner, "neither a transparency log nor a timestamp authority"},
		{"empty issuer", good, "", testSigner, "issuer is empty"},
		{"blank identity", good, testIssuer, "  ", "identity is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := loadExact(c.root, c.issuer, c.identity)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("loadSigstore = %v, %v; want an error containing %q", st, err, c.err)
			}
		})
	}
	if _, err := loadExact(good, testIssuer, testSigner); err != nil {
		t.Fatalf("good root: %v", err)
	}
}

// BenchmarkSigstoreVerify64MiB is the whole check of a 64 MiB release:
// bundle parsing, log entry, certificate chain and identity, and the
// signature over the artifact, read through its ReaderAt.
func BenchmarkSigstoreVerify64MiB(b *testing.B) {
	vs := testsign.NewVirtualSigstore(b)
	artifact := randomArtifact(b, 64<<20)
	for _, kind := range []string{"message signature", "attestation"} {
		b.Run(strings.ReplaceAll(kind, " ", "-"), func(b *testing.B) {
			var te *ca.TestEntity
			var err error
			if kind == "attestation" {
				te, err = vs.Attest(testSigner, testIssuer, testsign.Statement(b, artifact))
			} else {
				te, err = vs.Sign(testSigner, testIssuer, artifact)
			}
			if err != nil {
				b.Fatal(err)
			}
			bundle := testsign.Bundle(b, vs, te, testsign.Parts{Tlog: true})
			st := mustLoadSigstore(b, testsign.TrustedRoot(b, vs, true), testIssuer, testSigner)
			b.SetBytes(int64(len(artifact)))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.verify(bytes.NewReader(artifact), int64(len(artifact)), bundle); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// `gh attestation trusted-root` writes several roots, one a line: Sigstore's
// public good instance (with a log) and GitHub's (timestamps only). A bundle
// passes under either; a refusal says what went furthest.
func TestSigstoreSeveralRoots(t *testing.T) {
	public, github, stranger := testsign.NewVirtualSigstore(t), testsign.NewVirtualSigstore(t), testsign.NewVirtualSigstore(t)
	rootsJSONL := bytes.Join([][]byte{testsign.TrustedRoot(t, public, true), testsign.TrustedRoot(t, github, false)}, []byte("\n"))
	artifact := randomArtifact(t, 4096)
	stmt := testsign.Statement(t, artifact)
	fromPublic, err := public.Attest(testSigner, testIssuer, stmt)
	if err != nil {
		t.Fatal(err)
	}
	fromGitHub, err := github.Attest(testSigner, testIssuer, stmt)
	if err != nil {
		t.Fatal(err)
	}
	fromStranger, err := stranger.Sign(testSigner, testIssuer, artifact)
	if err != nil {
		t.Fatal(err)
	}
	publicBundle := testsign.Bundle(t, public, fromPublic, testsign.Parts{Tlog: true})
	githubBundle := testsign.Bundle(t, github, fromGitHub, testsign.Parts{Timestamp: true})
	strangerBundle := testsign.Bundle(t, stranger, fromStranger, testsign.Parts{Tlog: true, Timestamp: true})

	st := mustLoadSigstore(t, rootsJSONL, testIssuer, testSigner)
	if n := len(st.verifiers); n != 2 {
		t.Fatalf("%d verifiers, want one per line", n)
	}
	tampered := bytes.Clone(artifact)
	tampered[0] ^= 1
	for _, c := range []struct {
		name     string
		st       *sigstoreTrust
		artifact []byte
		bundle   []byte
		err      string
	}{
		{"public good", st, artifact, publicBundle, ""},
		{"github", st, artifact, githubBundle, ""},
		{"stranger", st, artifact, strangerBundle, "no trusted time of signing"},
		{"tampered", st, tampered, githubBundle, "the bundle does not match the artifact"},
		{"wrong identity", mustLoadSigstore(t, rootsJSONL, testIssuer, "other@example.com"), artifact, publicBundle,
			"is not the expected identity other@example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.st.verify(bytes.NewReader(c.artifact), int64(len(c.artifact)), c.bundle)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("verify: %v, want an error containing %q", err, c.err)
			}
		})
	}

	bad := append(bytes.Clone(rootsJSONL), []byte("\n{\"mediaType\": 3}")...)
	if _, err := loadExact(bad, testIssuer, testSigner); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("a bad third line: %v, want it named", err)
	}
	noLog := bytes.Join([][]byte{testsign.TrustedRoot(t, public, true), []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`)}, []byte("\n"))
	if _, err := loadExact(noLog, testIssuer, testSigner); err == nil || !strings.Contains(err.Error(), "trusted root on line 2 names no certificate authority") {
		t.Fatalf("an empty second root: %v, want it named", err)
	}
}

// A GitHub Actions certificate names the workflow with the ref it ran for;
// an identity naming the workflow without a ref matches any tag or branch.
func TestSigstoreWorkflowIdentity(t *testing.T) {
	const workflow = "https://github.com/org/app/.github/workflows/release.yml"
	const actions = "https://token.actions.githubusercontent.com"
	vs := testsign.NewVirtualSigstore(t)
	rootJSON := testsign.TrustedRoot(t, vs, true)
	artifact := randomArtifact(t, 1024)
	for _, c := range []struct {
		identity, signer string
		ok               bool
	}{
		{workflow, workflow + "@refs/tags/v1.2.0", true},
		{workflow, workflow + "@refs/heads/main", true},
		{workflow, workflow + "@refs/pull/7/merge", false},
		{workflow, workflow + "@", false},
		{workflow, "https://github.com/org/app/.github/workflows/release.yml2@refs/tags/v1", false},
		{workflow, "https://github.com/org/other/.github/workflows/release.yml@refs/tags/v1", false},
		{workflow + "@refs/tags/v1.2.0", workflow + "@refs/tags/v1.2.0", true},
		{workflow + "@refs/tags/v1.2.0", workflow + "@refs/tags/v1.2.1", false},
	} {
		name := strings.TrimPrefix(c.signer, "https://github.com/")
		if strings.Contains(c.identity, "@") {
			name = "exactly " + name
		}
		t.Run(name, func(t *testing.T) {
			te, err := vs.Sign(c.signer, actions, artifact)
			if err != nil {
				t.Fatal(err)
			}
			st := mustLoadSigstore(t, rootJSON, actions, c.identity)
			key, err := st.verify(bytes.NewReader(artifact), int64(len(artifact)), testsign.Bundle(t, vs, te, testsign.Parts{Tlog: true}))
			if want := c.signer + " (issuer " + actions + ")"; key != want {
				t.Errorf("key %q, want %q", key, want)
			}
			switch {
			case c.ok && err != nil:
				t.Fatalf("verify: %v", err)
			case !c.ok && (err == nil || !strings.Contains(err.Error(), "is not the expected identity")):
				t.Fatalf("verify: %v, want an identity mismatch", err)
			}
			if !c.ok && !strings.Contains(c.identity, "@") && !strings.Contains(err.Error(), "@refs/tags/* or @refs/heads/*") {
				t.Errorf("%v: want the refs that match named", err)
			}
		})
	}
}

// identity_regexp and issuer_regexp match as cosign's
// --certificate-identity-regexp and --certificate-oidc-issuer-regexp do:
// Go regexps, unanchored. A refusal names the pattern that failed and what
// the certificate had.
func TestSigstoreIdentityRegexp(t *testing.T) {
	const actions = "https://token.actions.githubusercontent.com"
	const release = `^https://github\.com/org/app/\.github/workflows/release\.yml@refs/tags/v`
	vs := testsign.NewVirtualSigstore(t)
	rootJSON := testsign.TrustedRoot(t, vs, true)
	artifact := randomArtifact(t, 1024)
	for _, c := range []struct {
		name                 string
		settings             SigstoreSettings // without the root
		signer, signerIssuer string
		err                  string // "" for a pass
	}{
		{name: "identity regexp matches", settings: SigstoreSettings{Issuer: actions, IdentityRegexp: release},
			signer: "https://github.com/org/app/.github/workflows/release.yml@refs/tags/v1.2.0", signerIssuer: actions},
		{name: "identity regexp does not match", settings: SigstoreSettings{Issuer: actions, IdentityRegexp: release},
			signer: "https://github.com/org/app/.github/workflows/release.yml@refs/heads/main", signerIssuer: actions,
			err: `certificate identity https://github.com/org/app/.github/workflows/release.yml@refs/heads/main issued by ` + actions +
				` is not the expected identity matching identity_regexp "` + release + `" issued by ` + actions + `: the identity does not match`},
		{name: "unanchored as cosign: a match inside the identity passes", settings: SigstoreSettings{Issuer: testIssuer, IdentityRegexp: `ci@example\.com`},
			signer: "evil-ci@example.com.attacker.test", signerIssuer: testIssuer},
		{name: "anchored pattern refuses what only contains a match", settings: SigstoreSettings{Issuer: testIssuer, IdentityRegexp: `^ci@example\.com$`},
			signer: "evil-ci@example.com", signerIssuer: testIssuer, err: `matching identity_regexp "^ci@example\.com$" issued by ` + testIssuer + ": the identity does not match"},
		{name: "issuer regexp matches", settings: SigstoreSettings{IssuerRegexp: `^https://issuer\.example\.(com|org)$`, Identity: testSigner},
			signer: testSigner, signerIssuer: testIssuer},
		{name: "issuer regexp does not match", settings: SigstoreSettings{IssuerRegexp: `^https://issuer\.example\.org$`, Identity: testSigner},
			signer: testSigner, signerIssuer: testIssuer,
			err: `certificate identity release@example.com issued by https://issuer.example.com is not the expected identity release@example.com issued by an issuer matching issuer_regexp "^https://issuer\.example\.org$": the issuer does not match`},
		{name: "both regexps fail", settings: SigstoreSettings{IssuerRegexp: `^https://other$`, IdentityRegexp: `^other@`},
			signer: testSigner, signerIssuer: testIssuer, err: "the identity does not match and the issuer does not match"},
		{name: "exact identity, wrong issuer", settings: SigstoreSettings{Issuer: actions, Identity: testSigner},
			signer: testSigner, signerIssuer: testIssuer, err: "issued by " + actions + ": the issuer does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			te, err := vs.Sign(c.signer, c.signerIssuer, artifact)
			if err != nil {
				t.Fatal(err)
			}
			s := c.settings
			s.TrustedRoot = KeyFile{Data: rootJSON}
			st, err := loadSigstore(s)
			if err != nil {
				t.Fatal(err)
			}
			key, err := st.verify(bytes.NewReader(artifact), int64(len(artifact)), testsign.Bundle(t, vs, te, testsign.Parts{Tlog: true}))
			if want := c.signer + " (issuer " + c.signerIssuer + ")"; key != want {
				t.Errorf("key %q, want %q", key, want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("verify: %v\nwant an error containing %q", err, c.err)
			}
		})
	}

	// What Decode reports at the attributes, loadSigstore refuses too (for
	// settings a program built).
	for _, c := range []struct {
		name string
		s    SigstoreSettings
		err  string
	}{
		{"both identities", SigstoreSettings{Issuer: testIssuer, Identity: testSigner, IdentityRegexp: "^r"}, "both identity and identity_regexp are set"},
		{"both issuers", SigstoreSettings{Issuer: testIssuer, IssuerRegexp: "^h", Identity: testSigner}, "both issuer and issuer_regexp are set"},
		{"bad identity regexp", SigstoreSettings{Issuer: testIssuer, IdentityRegexp: "^(r"}, `identity_regexp "^(r": error parsing regexp: missing closing )`},
		{"bad issuer regexp", SigstoreSettings{IssuerRegexp: "[", Identity: testSigner}, `issuer_regexp "[": error parsing regexp`},
		{"no identity", SigstoreSettings{Issuer: testIssuer}, "identity is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.s.TrustedRoot = KeyFile{Data: rootJSON}
			st, err := loadSigstore(c.s)
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("loadSigstore = %v, %v; want an error containing %q", st, err, c.err)
			}
		})
	}
}
