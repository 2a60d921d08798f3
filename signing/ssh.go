package signing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file is the SSH check: <artifact>.sig, an SSH signature as
// `ssh-keygen -Y sign -n <namespace>` makes it (OpenSSH's PROTOCOL.sshsig),
// against an allowed signers file (ssh-keygen's ALLOWED SIGNERS format).

// An armored SSH signature is the base64 of the blob between these lines.
const (
	sshArmorBegin = "-----BEGIN SSH SIGNATURE-----"
	sshArmorEnd   = "-----END SSH SIGNATURE-----"
	sshSigMagic   = "SSHSIG"
)

// allowedSigner is one line of an allowed signers file.
type allowedSigner struct {
	line       int
	principals string // as written (a comma list of patterns), unquoted
	key        ssh.PublicKey
	// namespaces are the patterns of the namespaces="..." option; nil
	// allows every namespace.
	namespaces  []string
	validAfter  time.Time // zero: no lower bound
	validBefore time.Time // zero: no upper bound
}

// parseAllowedSigners parses an allowed signers file. Its error names the
// line and what is wrong with it.
func parseAllowedSigners(data []byte) ([]allowedSigner, error) {
	var out []allowedSigner
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseAllowedSigner(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		s.line = i + 1
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New(`the file lists no signer; add a line "principal keytype base64-key", e.g. the .pub of the signing key prefixed with its principal`)
	}
	return out, nil
}

// parseAllowedSigner parses one line: principals, optional options, the key
// type, the base64 key, and an optional comment.
func parseAllowedSigner(line string) (allowedSigner, error) {
	var s allowedSigner
	fields, err := splitFields(line)
	if err != nil {
		return s, err
	}
	if len(fields) < 3 {
		return s, errors.New(`malformed line: want "principals [options] keytype base64-key [comment]"`)
	}
	s.principals = unquote(fields[0])
	if s.principals == "" {
		return s, errors.New("empty principals")
	}
	rest := fields[1:]
	key, keyErr := parseSSHKey(rest[0], rest[1])
	if keyErr != nil {
		if !strings.Contains(rest[0], "=") && !strings.EqualFold(rest[0], "cert-authority") {
			// Every option but cert-authority has a value: this is a key.
			return s, keyErr
		}
		// Not a key: the field is the options.
		if err := s.parseOptions(rest[0]); err != nil {
			return s, err
		}
		if len(rest) < 3 {
			return s, errors.New(`malformed line: no key after the options; want "principals [options] keytype base64-key [comment]"`)
		}
		if key, keyErr = parseSSHKey(rest[1], rest[2]); keyErr != nil {
			return s, keyErr
		}
	}
	s.key = key
	return s, nil
}

// parseSSHKey parses "keytype base64" as an allowed signers line gives it.
func parseSSHKey(keyType, b64 string) (ssh.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("key %q: the key is not base64: %v", keyType, err)
	}
	key, err := ssh.ParsePublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("key %q: %v", keyType, err)
	}
	if key.Type() != keyType {
		return nil, fmt.Errorf("key type %q does not match the key, which is %q", keyType, key.Type())
	}
	if _, ok := key.(*ssh.Certificate); ok {
		return nil, errors.New("certificates are not supported; list the signer's plain public key")
	}
	return key, nil
}

// parseOptions parses the options field: namespaces="...",
// valid-after="...", valid-before="..."; cert-authority is refused.
func (s *allowedSigner) parseOptions(field string) error {
	for _, opt := range splitOutsideQuotes(field, ',') {
		name, val, hasVal := strings.Cut(opt, "=")
		val = unquote(val)
		switch {
		case strings.EqualFold(name, "cert-authority") && !hasVal:
			return errors.New("cert-authority is not supported: verify signs with plain keys; list each signer's public key instead of its certificate authority")
		case strings.EqualFold(name, "namespaces") && hasVal:
			s.namespaces = strings.Split(val, ",")
		case strings.EqualFold(name, "valid-after") && hasVal:
			t, err := parseSignerTime(val)
			if err != nil {
				return fmt.Errorf("valid-after: %w", err)
			}
			s.validAfter = t
		case strings.EqualFold(name, "valid-before") && hasVal:
			t, err := parseSignerTime(val)
			if err != nil {
				return fmt.Errorf("valid-before: %w", err)
			}
			s.validBefore = t
		default:
			return fmt.Errorf("unknown option %q; the options are namespaces=\"...\", valid-after=\"...\" and valid-before=\"...\"", opt)
		}
	}
	return nil
}

// parseSignerTime parses a valid-after/valid-before time: YYYYMMDD,
// YYYYMMDDHHMM or YYYYMMDDHHMMSS, in UTC with a Z suffix, else local time.
func parseSignerTime(v string) (time.Time, error) {
	loc := time.Local
	if s, ok := strings.CutSuffix(v, "Z"); ok {
		v, loc = s, time.UTC
	}
	layouts := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}
	layout, ok := layouts[len(v)]
	if ok {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time; write YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, with Z for UTC", v)
}

// splitFields splits a line at whitespace outside double quotes.
func splitFields(line string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inQuote, inField := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote = !inQuote
			inField = true
			cur.WriteRune(r)
		case (r == ' ' || r == '\t') && !inQuote:
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			inField = true
			cur.WriteRune(r)
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	if inField {
		fields = append(fields, cur.String())
	}
	return fields, nil
}

// splitOutsideQuotes splits s at sep where it is outside double quotes.
func splitOutsideQuotes(s string, sep rune) []string {
	var out []string
	start, inQuote := 0, false
	for i, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// matchPatternList reports whether s matches a pattern list as OpenSSH
// reads one: patterns with * and ?, a "!" pattern that matches denies.
func matchPatternList(s string, patterns []string) bool {
	found := false
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if neg, ok := strings.CutPrefix(p, "!"); ok {
			if matchWildcard(s, neg) {
				return false
			}
			continue
		}
		if matchWildcard(s, p) {
			found = true
		}
	}
	return found
}

// matchWildcard matches s against a pattern of * (any run) and ? (any one
// character).
func matchWildcard(s, p string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if matchWildcard(s[i:], p[1:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
			s, p = s[1:], p[1:]
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
			s, p = s[1:], p[1:]
		}
	}
	return s == ""
}

// sshSignature is a parsed SSHSIG blob.
type sshSignature struct {
	key       ssh.PublicKey
	namespace string
	reserved  string
	hashAlg   string
	sig       *ssh.Signature
}

// parseSSHSignature parses an armored SSH signature.
func parseSSHSignature(armored []byte) (*sshSignature, error) {
	text := strings.TrimSpace(strings.ReplaceAll(string(armored), "\r\n", "\n"))
	body, ok := strings.CutPrefix(text, sshArmorBegin)
	if !ok {
		return nil, errors.New("no " + sshArmorBegin + " line")
	}
	body, ok = strings.CutSuffix(body, sshArmorEnd)
	if !ok {
		return nil, errors.New("no " + sshArmorEnd + " line")
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
	if err != nil {
		return nil, fmt.Errorf("not base64: %v", err)
	}
	var wire struct {
		Magic     [6]byte
		Version   uint32
		PublicKey []byte
		Namespace string
		Reserved  string
		HashAlg   string
		Signature []byte
	}
	if err := ssh.Unmarshal(blob, &wire); err != nil {
		return nil, fmt.Errorf("not an SSHSIG blob: %v", err)
	}
	if string(wire.Magic[:]) != sshSigMagic {
		return nil, errors.New("not an SSHSIG blob")
	}
	if wire.Version != 1 {
		return nil, fmt.Errorf("SSHSIG version %d, not 1", wire.Version)
	}
	key, err := ssh.ParsePublicKey(wire.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("its public key: %v", err)
	}
	var sig ssh.Signature
	if err := ssh.Unmarshal(wire.Signature, &sig); err != nil {
		return nil, fmt.Errorf("its signature: %v", err)
	}
	return &sshSignature{key: key, namespace: wire.Namespace, reserved: wire.Reserved, hashAlg: wire.HashAlg, sig: &sig}, nil
}

// newSSHHash returns the hash SSHSIG names.
func newSSHHash(name string) (hash.Hash, error) {
	switch name {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("hash algorithm %q is not sha256 or sha512", name)
}

// sshSignedData is what an SSHSIG signature signs: the magic, the
// namespace, the reserved field, the hash algorithm and the message's hash.
func sshSignedData(namespace, reserved, hashAlg string, digest []byte) []byte {
	return append([]byte(sshSigMagic), ssh.Marshal(struct {
		Namespace, Reserved, HashAlg string
		Hash                         []byte
	}{namespace, reserved, hashAlg, digest})...)
}

// sshSigners is the parsed ssh method.
type sshSigners struct {
	signers   []allowedSigner
	namespace string
}

// sshKeyName shows a signer's key: "principals (SHA256:...)".
func sshKeyName(principals string, key ssh.PublicKey) string {
	fp := ssh.FingerprintSHA256(key)
	if principals == "" {
		return fp
	}
	return principals + " (" + fp + ")"
}

// verify checks armored (the .sig bytes) over the artifact at now. rejected
// is why it does not verify; err is a failure to read the artifact.
func (v *sshSigners) verify(ctx context.Context, artifact io.ReaderAt, size int64, armored []byte, now time.Time) (key string, rejected *Reason, err error) {
	reject := func(key, why string, args ...any) (string, *Reason, error) {
		return key, &Reason{Method: SSH, Key: key, Why: fmt.Sprintf(why, args...)}, nil
	}
	sig, err := parseSSHSignature(armored)
	if err != nil {
		return reject("", "malformed signature: %v", err)
	}
	if _, ok := sig.key.(*ssh.Certificate); ok {
		return reject(ssh.FingerprintSHA256(sig.key), "signed with a certificate, which is not supported; sign with a plain key listed in ssh_allowed_signers")
	}
	key = ssh.FingerprintSHA256(sig.key)
	if sig.namespace != v.namespace {
		return reject(key, "signed for namespace %q, not %q (ssh_namespace); sign with ssh-keygen -Y sign -n %s", sig.namespace, v.namespace, v.namespace)
	}
	h, err := newSSHHash(sig.hashAlg)
	if err != nil {
		return reject(key, "malformed signature: %v", err)
	}
	if sig.sig.Format == ssh.KeyAlgoRSA {
		return reject(key, "the signature uses RSA with SHA-1 (ssh-rsa), which is refused; sign again with a current ssh-keygen")
	}
	// Find the signer before hashing: an unknown key is refused at once.
	var listed []allowedSigner
	want := sig.key.Marshal()
	for _, s := range v.signers {
		if bytes.Equal(s.key.Marshal(), want) {
			listed = append(listed, s)
		}
	}
	if len(listed) == 0 {
		return reject(key, "signed by key %s, which is not in ssh_allowed_signers", key)
	}
	var why string
	var signer *allowedSigner
	for i := range listed {
		s := &listed[i]
		switch {
		case s.namespaces != nil && !matchPatternList(v.namespace, s.namespaces):
			why = fmt.Sprintf("the allowed signer at line %d is not allowed namespace %q (namespaces=%q)", s.line, v.namespace, strings.Join(s.namespaces, ","))
		case !s.validAfter.IsZero() && now.Before(s.validAfter):
			why = fmt.Sprintf("the allowed signer at line %d is not valid yet: valid-after %s", s.line, s.validAfter.Format(time.RFC3339))
		case !s.validBefore.IsZero() && now.After(s.validBefore):
			why = fmt.Sprintf("the allowed signer at line %d has expired: valid-before %s", s.line, s.validBefore.Format(time.RFC3339))
		default:
			signer = s
		}
		if signer != nil {
			break
		}
	}
	if signer == nil {
		return reject(sshKeyName(listed[0].principals, sig.key), "%s", why)
	}
	key = sshKeyName(signer.principals, sig.key)
	if _, err := copyCtx(ctx, h, io.NewSectionReader(artifact, 0, size)); err != nil {
		return key, nil, err
	}
	if err := sig.key.Verify(sshSignedData(sig.namespace, sig.reserved, sig.hashAlg, h.Sum(nil)), sig.sig); err != nil {
		return reject(key, "the signature does not match the artifact")
	}
	return key, nil, nil
}
