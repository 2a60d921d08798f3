package signing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Verifier checks releases against an app's verify {} block. It is built by
// Settings.New and holds no state that changes: one Verifier may check
// several artifacts at once.
type Verifier struct {
	minisign minisignKeys // nil without minisign_public_keys
	ssh      *sshSigners  // nil without ssh_allowed_signers
	sigstore *sigstoreTrust
	cosign   *cosignKey

	// Now is the clock the allowed signers' valid-after and valid-before
	// are checked against; nil is time.Now.
	Now func() time.Time
}

// New parses what Decode read and checked; it does no I/O. Its error is for
// settings a program built (a file's are reported by Decode).
func (s *Settings) New() (*Verifier, error) {
	v := &Verifier{}
	var err error
	if len(s.MinisignPublicKeys) > 0 {
		if v.minisign, err = newMinisignKeys(s.MinisignPublicKeys); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	if s.SSH != nil {
		signers, err := parseAllowedSigners(s.SSH.AllowedSigners.Data)
		if err != nil {
			return nil, fmt.Errorf("verify: ssh_allowed_signers %s: %w", s.SSH.AllowedSigners.Path, err)
		}
		ns := s.SSH.Namespace
		if ns == "" {
			ns = DefaultSSHNamespace
		}
		v.ssh = &sshSigners{signers: signers, namespace: ns}
	}
	if s.Sigstore != nil {
		if v.sigstore, err = loadSigstore(*s.Sigstore); err != nil {
			return nil, fmt.Errorf("verify: sigstore trusted_root %s: %w", s.Sigstore.TrustedRoot.Path, err)
		}
	}
	if s.CosignPublicKey != nil {
		if v.cosign, err = parseCosignKey(s.CosignPublicKey.Data); err != nil {
			return nil, fmt.Errorf("verify: cosign_public_key %s: %w", s.CosignPublicKey.Path, err)
		}
	}
	return v, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// VerifyFile checks the downloaded artifact named name (size bytes, read
// through artifact) against the signatures fetch returns, one per configured
// file method, in Method order. It passes when any of them verifies. A
// refusal is a *Rejected with one Reason per method. Any other error is
// fetch's (a registry failure, which a retry may cure: it wins over a
// refusal) or a failure to read the artifact.
func (v *Verifier) VerifyFile(ctx context.Context, name string, artifact io.ReaderAt, size int64, fetch Fetch) (Verified, error) {
	type method struct {
		m      Method
		suffix string
		check  func(sig []byte) (Verified, *Reason, error)
	}
	var methods []method
	if v.minisign != nil {
		methods = append(methods, method{Minisign, MinisignSuffix, func(sig []byte) (Verified, *Reason, error) {
			key, comment, r, err := v.minisign.verify(ctx, artifact, size, sig)
			return Verified{Method: Minisign, Key: key, Comment: comment}, r, err
		}})
	}
	if v.ssh != nil {
		methods = append(methods, method{SSH, SSHSuffix, func(sig []byte) (Verified, *Reason, error) {
			key, r, err := v.ssh.verify(ctx, artifact, size, sig, v.now())
			return Verified{Method: SSH, Key: key}, r, err
		}})
	}
	if v.sigstore != nil {
		methods = append(methods, method{Sigstore, SigstoreSuffix, func(bundle []byte) (Verified, *Reason, error) {
			key, err := v.sigstore.verify(ctxReaderAt{ctx, artifact}, size, bundle)
			if ctx.Err() != nil {
				// Stopped while hashing: not a verdict on the release.
				return Verified{}, nil, ctx.Err()
			}
			if err != nil {
				return Verified{}, &Reason{Method: Sigstore, Key: key, Why: err.Error()}, nil
			}
			return Verified{Method: Sigstore, Key: key}, nil, nil
		}})
	}
	if len(methods) == 0 {
		return Verified{}, errors.New("verify: no file signature method is configured (only cosign_public_key, which is for img:// apps)")
	}
	rejected := &Rejected{}
	var fetchErr error
	for _, m := range methods {
		sig, err := fetch(ctx, m.suffix)
		switch {
		case errors.Is(err, ErrMissing):
			rejected.Reasons = append(rejected.Reasons, Reason{Method: m.m, Why: "no " + name + m.suffix + " beside the artifact"})
			continue
		case err != nil:
			if fetchErr == nil {
				fetchErr = err
			}
			continue
		case len(sig) > MaxSignatureSize:
			rejected.Reasons = append(rejected.Reasons, Reason{Method: m.m, Why: fmt.Sprintf("malformed signature: %s%s is larger than %d KiB", name, m.suffix, MaxSignatureSize>>10)})
			continue
		}
		ok, r, err := m.check(sig)
		if err != nil {
			return Verified{}, fmt.Errorf("verify %s with %s: %w", name, m.m, err)
		}
		if r == nil {
			return ok, nil
		}
		rejected.Reasons = append(rejected.Reasons, *r)
	}
	if fetchErr != nil {
		return Verified{}, fetchErr
	}
	return Verified{}, rejected
}

// VerifyImage checks that one of sigs, the cosign signatures attached to
// digest ("sha256:..."): the layers of its signature image and the Sigstore
// bundles referring to it, was made by the cosign key over exactly that
// digest. A refusal is a *Rejected with Method Cosign.
func (v *Verifier) VerifyImage(digest string, sigs []ImageSignature) (Verified, error) {
	if v.cosign == nil {
		return Verified{}, errors.New("verify: cosign_public_key is not set; images cannot be checked")
	}
	if len(sigs) == 0 {
		return Verified{}, &Rejected{Reasons: []Reason{{Method: Cosign, Why: "no cosign signature for " + digest + " in the registry (no tag " + cosignTag(digest) + ", no Sigstore bundle referring to it)"}}}
	}
	key, err := v.cosign.verify(digest, sigs)
	if err != nil {
		return Verified{}, &Rejected{Reasons: []Reason{{Method: Cosign, Key: key, Why: err.Error()}}}
	}
	return Verified{Method: Cosign, Key: key}, nil
}

// cosignTag is the tag cosign stores digest's signature under:
// sha256-<hex>.sig.
func cosignTag(digest string) string {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok {
		return digest + ".sig"
	}
	return alg + "-" + hex + ".sig"
}

// ctxReaderAt fails its reads once ctx is done, so a check that reads the
// artifact without a context of its own stops with the agent.
type ctxReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.ReadAt(p, off)
}
