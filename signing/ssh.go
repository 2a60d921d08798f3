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
	"math"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// This file is the SSH check: <artifact>.sig, an SSH signature as
// `ssh-keygen -Y sign -n <namespace>` makes it (OpenSSH's PROTOCOL.sshsig),
// against an allowed signers file (ssh-keygen's ALLOWED SIGNERS format).
//
// A signature is made either with a plain key, which must be listed on a
// line without cert-authority, or with an OpenSSH user certificate, whose
// CA must be listed on a cert-authority line. ssh-keygen -Y verify -I id
// accepts a certificate when id matches both the line's principals pattern
// and one of the certificate's principals; the agent has no id to check, so
// it accepts a certificate when one of its principals matches the line's
// pattern, as ssh-keygen -Y find-principals finds them.

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
	// ca is the cert-authority option: key is a CA whose user
	// certificates may sign, not a signer's key.
	ca bool
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
		return nil, errors.New("a certificate cannot be listed; list the signer's plain public key, or its CA's public key with the cert-authority option")
	}
	return key, nil
}

// parseOptions parses the options field: cert-authority, namespaces="...",
// valid-after="...", valid-before="...".
func (s *allowedSigner) parseOptions(field string) error {
	for _, opt := range splitOutsideQuotes(field, ',') {
		name, val, hasVal := strings.Cut(opt, "=")
		val = unquote(val)
		switch {
		case strings.EqualFold(name, "cert-authority") && !hasVal:
			s.ca = true
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
			return fmt.Errorf("unknown option %q; the options are cert-authority, namespaces=\"...\", valid-after=\"...\" and valid-before=\"...\"", opt)
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

// certKeyName shows a certificate: its principal that matched (if any),
// its key ID, its key's fingerprint and its CA's.
func certKeyName(principal string, cert *ssh.Certificate) string {
	id := cert.KeyId
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	name := fmt.Sprintf("certificate %q (%s) from CA %s", id, ssh.FingerprintSHA256(cert.Key), ssh.FingerprintSHA256(cert.SignatureKey))
	if principal != "" {
		name = principal + " " + name
	}
	return name
}

// refuses says why the allowed signer s does not accept a signature for
// namespace at now, or "" when it does: its namespaces=, valid-after= and
// valid-before= options.
func (s *allowedSigner) refuses(namespace string, now time.Time) string {
	switch {
	case s.namespaces != nil && !matchPatternList(namespace, s.namespaces):
		return fmt.Sprintf("the allowed signer at line %d is not allowed namespace %q (namespaces=%q)", s.line, namespace, strings.Join(s.namespaces, ","))
	case !s.validAfter.IsZero() && now.Before(s.validAfter):
		return fmt.Sprintf("the allowed signer at line %d is not valid yet: valid-after %s", s.line, s.validAfter.Format(time.RFC3339))
	case !s.validBefore.IsZero() && now.After(s.validBefore):
		return fmt.Sprintf("the allowed signer at line %d has expired: valid-before %s", s.line, s.validBefore.Format(time.RFC3339))
	}
	return ""
}

// keySigner finds the line that accepts a signature by the plain key key:
// a line without cert-authority listing that key. name shows the signer;
// why is the refusal when there is no such line.
func (v *sshSigners) keySigner(key ssh.PublicKey, now time.Time) (name, why string) {
	var listed []*allowedSigner
	want := key.Marshal()
	for i := range v.signers {
		if s := &v.signers[i]; !s.ca && bytes.Equal(s.key.Marshal(), want) {
			listed = append(listed, s)
		}
	}
	if len(listed) == 0 {
		fp := ssh.FingerprintSHA256(key)
		for _, s := range v.signers {
			if bytes.Equal(s.key.Marshal(), want) {
				return fp, fmt.Sprintf("signed by key %s, which ssh_allowed_signers lists at line %d as a cert-authority: a CA vouches for the certificates it signs, not for what it signs itself; sign with a certificate", fp, s.line)
			}
		}
		return fp, fmt.Sprintf("signed by key %s, which is not in ssh_allowed_signers", fp)
	}
	for _, s := range listed {
		if why = s.refuses(v.namespace, now); why == "" {
			return sshKeyName(s.principals, key), ""
		}
	}
	return sshKeyName(listed[0].principals, key), why
}

// certSigner finds the cert-authority line that accepts a signature by the
// certificate cert, as ssh-keygen -Y verify does: cert is a user
// certificate, valid at now, signed by the line's CA key, and one of its
// principals matches the line's principals. name shows the certificate;
// why is the refusal when no line accepts it.
func (v *sshSigners) certSigner(cert *ssh.Certificate, now time.Time) (name, why string) {
	name = certKeyName("", cert)
	if cert.CertType != ssh.UserCert {
		return name, "signed with a host certificate; only a user certificate (ssh-keygen -s without -h) can sign a release"
	}
	var listed []*allowedSigner
	ca := cert.SignatureKey.Marshal()
	for i := range v.signers {
		if s := &v.signers[i]; s.ca && bytes.Equal(s.key.Marshal(), ca) {
			listed = append(listed, s)
		}
	}
	if len(listed) == 0 {
		return name, fmt.Sprintf("signed with a certificate from CA %s, which is not a cert-authority in ssh_allowed_signers", ssh.FingerprintSHA256(cert.SignatureKey))
	}
	unix := now.Unix()
	if unix < 0 || uint64(unix) < cert.ValidAfter {
		return name, fmt.Sprintf("the certificate is not valid yet: valid after %s", certTime(cert.ValidAfter))
	}
	if cert.ValidBefore != ssh.CertTimeInfinity && uint64(unix) >= cert.ValidBefore {
		return name, fmt.Sprintf("the certificate has expired: valid before %s", certTime(cert.ValidBefore))
	}
	for _, s := range listed {
		principal := ""
		for _, p := range cert.ValidPrincipals {
			if matchPatternList(p, strings.Split(s.principals, ",")) {
				principal = p
				break
			}
		}
		if principal == "" {
			if why == "" {
				why = fmt.Sprintf("the certificate's principals %q match none of the cert-authority at line %d (%q)", cert.ValidPrincipals, s.line, s.principals)
			}
			continue
		}
		if w := s.refuses(v.namespace, now); w != "" {
			why = w
			continue
		}
		if cert.Signature != nil && cert.Signature.Format == ssh.KeyAlgoRSA {
			return name, "the certificate is signed by its CA with RSA and SHA-1 (ssh-rsa), which is refused; have the CA sign it again with ssh-keygen -s -t rsa-sha2-512"
		}
		// The CA's signature over the certificate. Its critical options
		// (force-command, source-address) restrict logins, not
		// signatures: ssh-keygen -Y verify does not read them either.
		checker := ssh.CertChecker{Clock: func() time.Time { return now }}
		for opt := range cert.CriticalOptions {
			checker.SupportedCriticalOptions = append(checker.SupportedCriticalOptions, opt)
		}
		if err := checker.CheckCert(principal, cert); err != nil {
			return name, fmt.Sprintf("the certificate is not valid: %v", err)
		}
		return certKeyName(principal, cert), ""
	}
	return name, why
}

// certTime shows a certificate's validity bound.
func certTime(t uint64) string {
	if t > math.MaxInt64 {
		return "forever"
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
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
	cert, isCert := sig.key.(*ssh.Certificate)
	key = ssh.FingerprintSHA256(sig.key)
	if isCert {
		key = certKeyName("", cert)
	}
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
	var why string
	if isCert {
		key, why = v.certSigner(cert, now)
	} else {
		key, why = v.keySigner(sig.key, now)
	}
	if why != "" {
		return reject(key, "%s", why)
	}
	if _, err := copyCtx(ctx, h, io.NewSectionReader(artifact, 0, size)); err != nil {
		return key, nil, err
	}
	// A certificate verifies with the key it certifies.
	if err := sig.key.Verify(sshSignedData(sig.namespace, sig.reserved, sig.hashAlg, h.Sum(nil)), sig.sig); err != nil {
		return reject(key, "the signature does not match the artifact")
	}
	return key, nil, nil
}
