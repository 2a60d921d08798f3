package version

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// ErrNoChecksum is wrapped by ParseChecksums when the checksum file does not list
// the artifact.
var ErrNoChecksum = errors.New("no checksum listed")

// MaxChecksumFile is the most ParseChecksums reads; a larger file is an error.
const MaxChecksumFile = 1 << 20

// PickChecksum chooses the asset that lists the artifact's SHA-256, or returns
// nil when the release has none. Names are compared case-insensitively; the
// best kind present wins, and among assets of one kind the first in the
// registry's order:
//
//  1. <artifact>.sha256
//  2. <artifact>.sha256sum
//  3. SHA256SUMS or SHA256SUMS.txt
//  4. checksums.txt
//  5. a name ending in _checksums.txt or -checksums.txt (goreleaser's
//     <project>_<version>_checksums.txt) or in _SHA256SUMS or -SHA256SUMS
//     (HashiCorp's <project>_<version>_SHA256SUMS)
//
// Lists of other digests (SHA512SUMS, .md5) and signatures of checksum files are
// never chosen. An empty artifact name (an image release) has no checksum.
func PickChecksum(assets []Asset, artifact string) *Asset {
	if artifact == "" {
		return nil
	}
	art := strings.ToLower(artifact)
	best, bestRank := -1, 0
	for i, a := range assets {
		r := checksumRank(strings.ToLower(a.Name), art)
		if r > 0 && (best < 0 || r < bestRank) {
			best, bestRank = i, r
		}
	}
	if best < 0 {
		return nil
	}
	c := assets[best]
	return &c
}

// checksumRank is the kind of checksum file a lower-cased name is for the
// lower-cased artifact name: 1 is best, 0 is not a checksum file for it.
func checksumRank(name, artifact string) int {
	switch {
	case name == artifact+".sha256":
		return 1
	case name == artifact+".sha256sum":
		return 2
	case name == "sha256sums" || name == "sha256sums.txt":
		return 3
	case name == "checksums.txt":
		return 4
	case strings.HasSuffix(name, "_checksums.txt"), strings.HasSuffix(name, "-checksums.txt"),
		strings.HasSuffix(name, "_sha256sums"), strings.HasSuffix(name, "-sha256sums"):
		return 5
	}
	return 0
}

// ParseChecksums reads a checksum file and returns the lower-case hex SHA-256 it
// lists for artifact.
//
// Lines may be:
//
//	<64 hex>  name           sha256sum's text mode (one space also accepted)
//	<64 hex> *name           sha256sum's binary mode
//	\<64 hex>  escaped-name  sha256sum's escaping of "\" and newline in names
//	SHA256 (name) = <64 hex> BSD style; openssl's "SHA2-256(name)= <hex>" too
//	<64 hex>                 a .sha256 file holding only the digest
//
// Blank lines and lines starting with "#" are skipped, and so are BSD-style lines
// of other algorithms. A name matches when it equals artifact, with or without
// a leading "./"; failing that, a name whose last path element equals artifact
// ("dist/myapp.tar.gz"); failing that, a lone digest without a name. Any other
// line (a digest that is not 64 hex digits, an HTML error page) makes the file
// malformed and is an error. Conflicting digests for the artifact are an error.
// When the file does not list the artifact the error wraps ErrNoChecksum.
//
// It reads at most MaxChecksumFile bytes; a larger file is an error.
func ParseChecksums(r io.Reader, artifact string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxChecksumFile+1))
	if err != nil {
		return "", fmt.Errorf("read checksum file: %w", err)
	}
	if len(data) > MaxChecksumFile {
		return "", fmt.Errorf("checksum file is larger than %d bytes", MaxChecksumFile)
	}
	text := strings.TrimPrefix(string(data), "\ufeff")

	var exact, base, bare sumSet
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		sum, name, ok, err := parseChecksumLine(line)
		if err != nil {
			return "", fmt.Errorf("checksum file line %d: %w", n+1, err)
		}
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "./")
		switch {
		case name == "":
			bare.add(sum)
		case name == artifact:
			exact.add(sum)
		case path.Base(name) == artifact:
			base.add(sum)
		}
	}
	for _, s := range []*sumSet{&exact, &base, &bare} {
		if s.sum == "" {
			continue
		}
		if s.conflict {
			return "", fmt.Errorf("checksum file lists different SHA-256 digests for %q", artifact)
		}
		return s.sum, nil
	}
	return "", fmt.Errorf("%w for %q", ErrNoChecksum, artifact)
}

// sumSet collects the digests found for one kind of match.
type sumSet struct {
	sum      string
	conflict bool
}

func (s *sumSet) add(sum string) {
	if s.sum == "" {
		s.sum = sum
	} else if s.sum != sum {
		s.conflict = true
	}
}

// parseChecksumLine reads one trimmed, non-empty line. ok is false for a valid
// line of another algorithm.
func parseChecksumLine(line string) (sum, name string, ok bool, err error) {
	if alg, rest, found := strings.Cut(line, "("); found && isAlgorithm(strings.TrimSpace(alg)) {
		// BSD style: ALG (name) = digest. The name may itself hold parentheses.
		end := strings.LastIndex(rest, ")")
		if end < 0 {
			return "", "", false, fmt.Errorf("malformed line %s", quoteShort(line))
		}
		name = rest[:end]
		digest, found := strings.CutPrefix(strings.TrimSpace(rest[end+1:]), "=")
		if !found {
			return "", "", false, fmt.Errorf("malformed line %s", quoteShort(line))
		}
		a := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(alg), "-", ""))
		if a != "SHA256" && a != "SHA2256" {
			return "", "", false, nil
		}
		sum, err = checkHex(strings.TrimSpace(digest))
		return sum, name, err == nil, err
	}

	escaped := false
	if line[0] == '\\' {
		escaped, line = true, line[1:]
	}
	digest, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		digest, rest = line[:i], line[i+1:]
	}
	sum, err = checkHex(digest)
	if err != nil {
		return "", "", false, err
	}
	// After "<digest> " comes " name" (text mode), "*name" (binary mode) or,
	// from some tools, the name right away.
	if len(rest) > 0 && (rest[0] == ' ' || rest[0] == '*') {
		rest = rest[1:]
	}
	name = rest
	if escaped {
		name = unescapeName(name)
	}
	return sum, name, true, nil
}

// isAlgorithm reports whether s looks like a BSD-style algorithm name
// ("SHA256", "SHA2-256", "MD5").
func isAlgorithm(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// checkHex returns the lower-cased digest, or an error when it is not exactly
// 64 hex digits.
func checkHex(s string) (string, error) {
	if len(s) != 64 {
		return "", fmt.Errorf("%s is not a SHA-256 digest (64 hex digits)", quoteShort(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("%s is not a SHA-256 digest (64 hex digits)", quoteShort(s))
		}
	}
	return strings.ToLower(s), nil
}

// unescapeName undoes sha256sum's escaping: "\\" is a backslash, "\n" a newline.
func unescapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// quoteShort quotes s for an error message, cut to a readable length.
func quoteShort(s string) string {
	const max = 72
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
