package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/dewy-agent/dewy-agent/signing"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// Signature files of a source that lists no files (grpc, see
// sources.Siblings): the signature URLs are the artifact URL with each
// suffix added, and nothing shows whether a file is there until it is
// fetched. So that a signature uploaded after a refusal is tried again, as
// it is for folder registries and images:
//
//   - a refused deploy records what it fetched (siblingState: per suffix,
//     "none" or the SHA-256 of the bytes) in the identity it marks bad;
//   - while the version is marked bad that way, each poll fetches the
//     signature files again through the same Open (an opener can only GET,
//     so the files are read, at most signing.MaxSignatureSize+1 bytes each)
//     and a different state makes the identity differ, so the version is
//     tried again;
//   - a fetch that fails (the registry or bucket is down) keeps the mark;
//   - a version not marked bad, or marked bad for another reason, costs no
//     request.

// siblingProbeTimeout bounds the fetches of one poll's sibling check, so
// that a registry that hangs does not stall the app's loop.
const siblingProbeTimeout = 30 * time.Second

// siblingMarker starts the part of an identity that names the signature
// files fetched beside a grpc artifact.
const siblingMarker = " fetched="

// siblingState names the signature files fetched for each of suffixes, in
// their order, from fetched (suffix to "none" or "sha256:<hex>"): the
// siblingMarker, then "<suffix>:<state>" joined by ",". It is "" when a
// suffix was not fetched, so that a partial record never forces a retry.
func siblingState(suffixes []string, fetched map[string]string) string {
	if len(suffixes) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(siblingMarker)
	for i, s := range suffixes {
		st, ok := fetched[s]
		if !ok {
			return ""
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s + ":" + st)
	}
	return b.String()
}

// sigFileState is what a fetched signature file is for siblingState.
func sigFileState(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// readSignature reads a signature file from asset of c's release through
// src, at most signing.MaxSignatureSize+1 bytes. A missing file is
// signing.ErrMissing.
func readSignature(ctx context.Context, src sources.Source, c *version.Candidate, asset version.Asset) ([]byte, error) {
	r, err := src.Open(ctx, c.Release, asset)
	if err != nil {
		if errors.Is(err, sources.ErrNotFound) {
			return nil, signing.ErrMissing
		}
		return nil, err
	}
	defer r.Close()
	// One byte more than a signature may have, so that a larger file is
	// refused as too large rather than read whole.
	return io.ReadAll(io.LimitReader(r, signing.MaxSignatureSize+1))
}

// currentSiblings fetches the signature files beside c's artifact from a
// source that lists none, and names them as siblingState does. ok is false
// when src is not such a source or a fetch failed.
func currentSiblings(ctx context.Context, src sources.Source, c *version.Candidate, suffixes []string) (string, bool) {
	if _, isSib := src.(sources.Siblings); !isSib || len(suffixes) == 0 {
		return "", false
	}
	ctx, cancel := context.WithTimeout(ctx, siblingProbeTimeout)
	defer cancel()
	fetched := make(map[string]string, len(suffixes))
	for _, s := range suffixes {
		asset, ok := signatureAsset(src, c, s) // the file the deploy's check fetched
		if !ok {
			return "", false
		}
		b, err := readSignature(ctx, src, c, asset)
		switch {
		case errors.Is(err, signing.ErrMissing):
			fetched[s] = "none"
		case err != nil:
			return "", false
		default:
			fetched[s] = sigFileState(b)
		}
	}
	return siblingState(suffixes, fetched), true
}

// siblingIdentity is identityFor for a file release of a source that lists
// no files: id, or, when b (the version's bad mark) was recorded with the
// signature files a refused deploy fetched, id with the files the source
// holds now. When they cannot be fetched, the mark stands.
func siblingIdentity(ctx context.Context, src sources.Source, c *version.Candidate, suffixes []string, id string, b BadVersion) string {
	if !strings.HasPrefix(b.Artifact, id+siblingMarker) {
		return id
	}
	state, ok := currentSiblings(ctx, src, c, suffixes)
	if !ok {
		return b.Artifact
	}
	return id + state
}
