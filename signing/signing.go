// Package signing decides whether a release was signed by a key the operator
// trusts. It owns an app's `verify {}` block: its schema, the reading of the
// keys it names (at validate, start and reload, so a bad key is a config
// error with its position), and the checks:
//
//   - minisign: <artifact>.minisig against minisign_public_keys;
//   - ssh: <artifact>.sig, as `ssh-keygen -Y sign` makes it, against the
//     ssh_allowed_signers file and ssh_namespace;
//   - sigstore: <artifact>.sigstore.json, a Sigstore bundle, verified offline
//     against a trusted root and an expected identity (sigstore {} block);
//   - cosign: for images, the cosign signatures stored under the
//     sha256-<digest>.sig tag or as Sigstore bundles referring to the
//     image, against cosign_public_key.
//
// It is a leaf beside the sources and runners: it imports neither, nor the
// agent. The agent fetches the signature files (through the app's source) and
// hands their bytes here with the downloaded artifact, before extraction.
package signing

import (
	"context"
	"errors"
)

// Method is one kind of signature.
type Method string

// The methods, by the name status and notifications show.
const (
	Minisign Method = "minisign"
	SSH      Method = "ssh"
	Sigstore Method = "sigstore"
	Cosign   Method = "cosign"
)

// Suffixes of the signature files a file artifact may have beside it. A
// file with one of them is never picked as an artifact.
const (
	MinisignSuffix = ".minisig"
	SSHSuffix      = ".sig"
	SigstoreSuffix = ".sigstore.json"
)

// MaxSignatureSize caps a signature file's download: anything larger is
// malformed.
const MaxSignatureSize = 1 << 20

// ErrMissing is wrapped by a Fetch error when the signature file does not
// exist beside the artifact.
var ErrMissing = errors.New("no signature")

// ErrRejected is matched (errors.Is) by every *Rejected.
var ErrRejected = errors.New("signature rejected")

// Rejected is why a release was refused: no configured method found a
// signature that verifies. The agent marks the version bad for that artifact,
// notifies signature_rejected and shows Error() in status and plan.
type Rejected struct {
	// Reasons has one entry per configured method, in the order of Method's
	// constants.
	Reasons []Reason
}

// Reason is one method's verdict on a refused release.
type Reason struct {
	Method Method
	// Key names the key that was tried or that signed (a minisign key ID, an
	// allowed signer's principal and fingerprint, a certificate identity,
	// the cosign key's fingerprint); "" when no signature was found.
	Key string
	// Why is what failed: "no <artifact>.minisig beside the artifact",
	// "signed by key 1A2B... which is not trusted", "the signature does not
	// match the artifact", "malformed signature: ...".
	Why string
}

func (e *Rejected) Error() string {
	s := "signature rejected"
	for i, r := range e.Reasons {
		if i == 0 {
			s += ": "
		} else {
			s += "; "
		}
		s += string(r.Method)
		if r.Key != "" {
			s += " (key " + r.Key + ")"
		}
		s += ": " + r.Why
	}
	return s
}

// Is makes errors.Is(err, ErrRejected) true.
func (e *Rejected) Is(target error) bool { return target == ErrRejected }

// Verified is what a passing check found, for status, reports and logs.
type Verified struct {
	Method Method
	// Key names the key that verified (as Reason.Key).
	Key string
	// Comment is minisign's trusted comment; "" for other methods.
	Comment string
}

// String is "minisign key 1A2B3C4D5E6F7A8B (trusted comment: ...)".
func (v Verified) String() string {
	s := string(v.Method) + " key " + v.Key
	if v.Comment != "" {
		s += " (trusted comment: " + v.Comment + ")"
	}
	return s
}

// Fetch returns the bytes of the signature file named by the artifact's name
// plus suffix, at most MaxSignatureSize+1 of them (more is refused as too
// large). It returns an error
// wrapping ErrMissing when there is none; any other error is the registry's
// (the agent retries it later, as any failed download).
type Fetch func(ctx context.Context, suffix string) ([]byte, error)

// ImageSignature is one cosign signature of an image, in either of the
// layouts cosign stores: a layer of the signature image (the simple signing
// payload, the layer's blob, and the base64 signature in its
// dev.cosignproject.cosign/signature annotation), or, when Bundle is set, the
// Sigstore bundle of an artifact that refers to the image (cosign 3's
// default), and then Payload and Signature are unused.
type ImageSignature struct {
	Payload   []byte
	Signature string
	Bundle    []byte
}

// The agent's view, which the core's helper writes in settings.go and
// verifier.go:
//
//	// Settings is an app's decoded verify {} block: plain, comparable data
//	// (the key texts and the bytes of the files it names, read at decode),
//	// so the agent can compare an app's old and new settings with
//	// reflect.DeepEqual on reload.
//	type Settings struct{ ... }
//	// Decode reads the block; relative paths are resolved against baseDir
//	// (the config file's folder). Every problem is a diagnostic at its
//	// attribute's range; a key that does not parse is one.
//	func Decode(b hclsettings.Block, baseDir string) (*Settings, hcl.Diagnostics)
//	func (s *Settings) FileSuffixes() []string // configured file methods' suffixes, Method order
//	func (s *Settings) Images() bool           // cosign_public_key is set
//	func (s *Settings) Files() bool            // a file method is set
//	// New parses what Decode read and checked; it does no I/O.
//	func (s *Settings) New() (*Verifier, error)
//
//	// VerifyFile checks the downloaded artifact named name (size bytes,
//	// read through artifact) against the signatures fetch returns. It
//	// passes when any configured file method verifies. A refusal is a
//	// *Rejected; any other error is fetch's (a registry failure).
//	func (v *Verifier) VerifyFile(ctx context.Context, name string, artifact io.ReaderAt, size int64, fetch Fetch) (Verified, error)
//	// VerifyImage checks that one of sigs, the cosign signatures attached
//	// to digest ("sha256:..."), was made by the cosign key over exactly
//	// that digest. A refusal is a *Rejected.
//	func (v *Verifier) VerifyImage(digest string, sigs []ImageSignature) (Verified, error)
