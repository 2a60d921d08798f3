package signing

import (
	"context"
	"fmt"
	"io"
	"strings"

	"aead.dev/minisign"
)

// This file is the minisign check: <artifact>.minisig against
// minisign_public_keys.

// maxLegacyMinisignSize caps the artifact a legacy ("Ed", not prehashed)
// minisign signature may cover: such a signature is over the whole message,
// so the artifact is read into memory.
const maxLegacyMinisignSize = 64 << 20

// minisignKeys are the parsed minisign_public_keys, by key ID.
type minisignKeys map[uint64]minisign.PublicKey

// parseMinisignKey parses a key as written in minisign_public_keys: the
// base64 line of minisign.pub, or the file's two lines.
func parseMinisignKey(text string) (minisign.PublicKey, error) {
	var k minisign.PublicKey
	if err := k.UnmarshalText([]byte(strings.TrimSpace(text))); err != nil {
		return k, fmt.Errorf("not a minisign public key (%s)", strings.TrimPrefix(err.Error(), "minisign: "))
	}
	return k, nil
}

// newMinisignKeys parses keys (checked by Decode already).
func newMinisignKeys(texts []string) (minisignKeys, error) {
	keys := minisignKeys{}
	for i, t := range texts {
		k, err := parseMinisignKey(t)
		if err != nil {
			return nil, fmt.Errorf("minisign_public_keys key %d: %w", i+1, err)
		}
		keys[k.ID()] = k
	}
	return keys, nil
}

// minisignKeyID shows a key ID as minisign prints it: 16 uppercase hex
// digits.
func minisignKeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// verify checks sig (the .minisig bytes) over the artifact. It returns the
// trusted comment when it verifies; rejected is a Reason's Key and Why when
// it does not; err is a failure to read the artifact.
func (keys minisignKeys) verify(ctx context.Context, artifact io.ReaderAt, size int64, sig []byte) (key, comment string, rejected *Reason, err error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return "", "", &Reason{Method: Minisign, Why: "malformed signature: " + strings.TrimPrefix(err.Error(), "minisign: ")}, nil
	}
	key = minisignKeyID(s.KeyID)
	pub, ok := keys[s.KeyID]
	if !ok {
		return key, "", &Reason{Method: Minisign, Key: key, Why: "signed by key " + key + ", which is not in minisign_public_keys"}, nil
	}
	var good bool
	switch s.Algorithm {
	case minisign.HashEdDSA:
		r := minisign.NewReader(io.NewSectionReader(artifact, 0, size))
		if _, err := copyCtx(ctx, io.Discard, r); err != nil {
			return key, "", nil, err
		}
		good = r.Verify(pub, sig)
	default: // minisign.EdDSA, the only other algorithm UnmarshalText accepts
		if size > maxLegacyMinisignSize {
			return key, "", &Reason{Method: Minisign, Key: key, Why: fmt.Sprintf(
				"legacy (not prehashed) signature over an artifact of %d MiB, larger than the %d MiB such a signature is checked for; sign with minisign 0.10 or later without -l",
				size>>20, maxLegacyMinisignSize>>20)}, nil
		}
		msg := make([]byte, size)
		if _, err := io.ReadFull(io.NewSectionReader(artifact, 0, size), msg); err != nil {
			return key, "", nil, fmt.Errorf("read the artifact: %w", err)
		}
		good = minisign.Verify(pub, msg, sig)
	}
	if !good {
		return key, "", &Reason{Method: Minisign, Key: key, Why: "the signature does not match the artifact (or its trusted comment was altered)"}, nil
	}
	return key, s.TrustedComment, nil, nil
}

// copyCtx copies src to dst, stopping when ctx is done: hashing a large
// artifact does not outlive the agent's stop.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := src.Read(buf)
		if m > 0 {
			w, werr := dst.Write(buf[:m])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read the artifact: %w", err)
		}
	}
}
