package signing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
)

// DefaultSSHNamespace is ssh_namespace when it is not written: the namespace
// `ssh-keygen -Y sign -n file` signs release files with.
const DefaultSSHNamespace = "file"

// maxKeyFileSize caps the files the verify block names (allowed signers,
// cosign.pub, a trusted root): anything larger is not the file meant.
const maxKeyFileSize = 4 << 20

// Settings is an app's decoded verify {} block: plain, comparable data (the
// key texts and the bytes of the files it names, read at decode), so the
// agent can compare an app's old and new settings with reflect.DeepEqual on
// reload. A file whose contents changed makes the settings differ.
type Settings struct {
	// MinisignPublicKeys are the keys as written: the base64 line of a
	// minisign.pub ("RW..."), or the whole file's two lines.
	MinisignPublicKeys []string
	// SSH is the ssh method; nil when ssh_allowed_signers is not set.
	SSH *SSHSettings
	// CosignPublicKey is the cosign method for images; nil when
	// cosign_public_key is not set.
	CosignPublicKey *KeyFile
	// Sigstore is the sigstore {} block; nil when there is none.
	Sigstore *SigstoreSettings
}

// KeyFile is a file the verify block names: its path (resolved against the
// config file's folder) and the bytes read from it at decode.
type KeyFile struct {
	Path string
	Data []byte
}

// SSHSettings is the ssh method: the allowed signers file (ssh-keygen's
// ALLOWED SIGNERS format) and the namespace signatures must be made for.
type SSHSettings struct {
	AllowedSigners KeyFile
	Namespace      string
}

// SigstoreSettings is the sigstore {} block: a trusted root (the JSON of a
// trusted_root.json) and the identity a bundle's certificate must name.
// Exactly one of Issuer and IssuerRegexp is set, and one of Identity and
// IdentityRegexp.
type SigstoreSettings struct {
	TrustedRoot KeyFile
	// Issuer is the OIDC issuer the certificate must name, such as
	// "https://token.actions.githubusercontent.com".
	Issuer string
	// IssuerRegexp is a Go regular expression the issuer must match,
	// unanchored as cosign's --certificate-oidc-issuer-regexp.
	IssuerRegexp string
	// Identity is the certificate's subject alternative name, matched
	// exactly (a GitHub workflow without @<ref> matches any tag or branch).
	Identity string
	// IdentityRegexp is a Go regular expression the subject alternative
	// name must match, unanchored as cosign's
	// --certificate-identity-regexp.
	IdentityRegexp string
}

// FileSuffixes are the suffixes of the signature files the configured file
// methods look for beside an artifact, in Method order.
func (s *Settings) FileSuffixes() []string {
	if s == nil {
		return nil
	}
	var out []string
	if len(s.MinisignPublicKeys) > 0 {
		out = append(out, MinisignSuffix)
	}
	if s.SSH != nil {
		out = append(out, SSHSuffix)
	}
	if s.Sigstore != nil {
		out = append(out, SigstoreSuffix)
	}
	return out
}

// Files reports whether a file method (minisign, ssh, sigstore) is set. A
// nil Settings (no verify block) has none.
func (s *Settings) Files() bool { return len(s.FileSuffixes()) > 0 }

// Images reports whether cosign_public_key is set; false for nil Settings.
func (s *Settings) Images() bool { return s != nil && s.CosignPublicKey != nil }

// Decode reads a verify {} block. Relative paths are resolved against baseDir
// (the config file's folder), and the files they name are read and parsed
// now, so that every problem (an unknown attribute, a key that does not
// parse, an unreadable file, a malformed allowed-signers line) is a
// diagnostic at its attribute's range. It returns nil Settings when there is
// an error.
func Decode(b hclsettings.Block, baseDir string) (*Settings, hcl.Diagnostics) {
	d := hclsettings.NewDecoder(b.Ctx)
	r := d.Read(b.Body, b.DefRange)
	blk := b.DefRange
	s := &Settings{}

	keys := hclsettings.Get[[]string](r, "minisign_public_keys",
		`a list of minisign public keys, each the base64 line of a minisign.pub, e.g. ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]`)
	signers := hclsettings.Get[string](r, "ssh_allowed_signers",
		"the path of an allowed signers file (the format of ssh-keygen -Y verify)")
	namespace := hclsettings.Get[string](r, "ssh_namespace",
		`the namespace the release was signed for (ssh-keygen -Y sign -n), "file" when not set`)
	cosign := hclsettings.Get[string](r, "cosign_public_key",
		"the path of a cosign public key (cosign.pub, a PEM PUBLIC KEY), for img:// apps")
	sigstores := r.Blocks("sigstore")
	r.Close()

	if keys.Set {
		s.MinisignPublicKeys = decodeMinisignKeys(d, keys, r.Expr("minisign_public_keys"))
	}
	if signers.Set {
		if f, ok := readKeyFile(d, signers, "ssh_allowed_signers", baseDir); ok {
			if _, err := parseAllowedSigners(f.Data); err != nil {
				d.Fail(signers.Range, "Invalid ssh_allowed_signers", "ssh_allowed_signers %s: %v.", signers.Show(), err)
			}
			namespace.OrDefault(DefaultSSHNamespace)
			s.SSH = &SSHSettings{AllowedSigners: f, Namespace: namespace.Val}
		}
	} else if namespace.Set {
		d.Fail(namespace.Range, "ssh_namespace without ssh_allowed_signers",
			"ssh_namespace is the namespace SSH signatures are checked for; add ssh_allowed_signers (the keys that may sign) or remove ssh_namespace.")
	}
	if namespace.Set && namespace.Val == "" {
		d.Fail(namespace.Range, "Invalid ssh_namespace", `ssh_namespace is empty; give the namespace passed to ssh-keygen -Y sign -n, such as "file".`)
	}
	if cosign.Set {
		if f, ok := readKeyFile(d, cosign, "cosign_public_key", baseDir); ok {
			if _, err := parseCosignKey(f.Data); err != nil {
				// The parser's message says what to give instead.
				d.Fail(cosign.Range, "Invalid cosign_public_key", "cosign_public_key %s: %v.", cosign.Show(), err)
			}
			s.CosignPublicKey = &f
		}
	}
	for i, sb := range sigstores {
		if i > 0 {
			d.Fail(sb.DefRange, "Duplicate sigstore block",
				"a verify block has at most one sigstore block and the first is at line %d; merge them.", sigstores[0].DefRange.Start.Line)
			continue
		}
		s.Sigstore = decodeSigstore(d, sb, baseDir)
	}

	if !d.Diags.HasErrors() && len(s.MinisignPublicKeys) == 0 && s.SSH == nil && s.CosignPublicKey == nil && s.Sigstore == nil {
		d.Fail(blk, "Empty verify block",
			"a verify block must name at least one trusted key: minisign_public_keys, ssh_allowed_signers, a sigstore {} block, or cosign_public_key (img:// apps); without one, remove the block.")
	}
	if d.Diags.HasErrors() {
		return nil, d.Diags
	}
	return s, d.Diags
}

// decodeMinisignKeys checks each key of minisign_public_keys, reporting a
// bad one at its own element when the list is written out.
func decodeMinisignKeys(d *hclsettings.Decoder, keys hclsettings.Setting[[]string], expr hcl.Expression) []string {
	if len(keys.Val) == 0 {
		d.Fail(keys.Range, "Empty minisign_public_keys",
			`minisign_public_keys is empty; give at least one key (the "RW..." line of minisign.pub) or remove the attribute.`)
		return nil
	}
	var elems []hclsyntax.Expression
	if t, ok := expr.(*hclsyntax.TupleConsExpr); ok {
		elems = t.Exprs
	}
	out := make([]string, 0, len(keys.Val))
	seen := map[uint64]int{}
	for i, text := range keys.Val {
		rng := keys.Range
		if len(elems) == len(keys.Val) {
			rng = elems[i].Range()
		}
		show := fmt.Sprintf("key %d", i+1)
		if !keys.Sensitive {
			show += fmt.Sprintf(" %q", text)
		}
		text = strings.TrimSpace(text)
		k, err := parseMinisignKey(text)
		if err != nil {
			d.Fail(rng, "Invalid minisign public key",
				`minisign_public_keys %s: %v; give the base64 line of minisign.pub, which starts with "RW".`, show, err)
			continue
		}
		if j, dup := seen[k.ID()]; dup {
			d.Fail(rng, "Duplicate minisign public key",
				"minisign_public_keys %s has key ID %s, as key %d does; list each key once.", show, minisignKeyID(k.ID()), j+1)
			continue
		}
		seen[k.ID()] = i
		out = append(out, text)
	}
	return out
}

// decodeSigstore reads the sigstore {} block; nil when it is not usable
// (reported).
func decodeSigstore(d *hclsettings.Decoder, b hclsettings.Block, baseDir string) *SigstoreSettings {
	r := d.Read(b.Body, b.DefRange)
	root := hclsettings.Get[string](r, "trusted_root",
		"the path of a Sigstore trusted root (trusted_root.json, as `sigstore trustedroot` or the TUF repository gives it)")
	issuer := hclsettings.Get[string](r, "issuer",
		`the OIDC issuer of the signing certificate, e.g. "https://token.actions.githubusercontent.com"`)
	issuerRE := hclsettings.Get[string](r, "issuer_regexp",
		`a Go regular expression the OIDC issuer must match, instead of issuer; unanchored as cosign's --certificate-oidc-issuer-regexp, so write ^ and $`)
	identity := hclsettings.Get[string](r, "identity",
		`the signer's identity (the certificate's subject alternative name), e.g. "https://github.com/org/api/.github/workflows/release.yml@refs/heads/main"`)
	identityRE := hclsettings.Get[string](r, "identity_regexp",
		`a Go regular expression the signer's identity must match, instead of identity, e.g. "^https://github\\.com/org/api/\\.github/workflows/release\\.yml@refs/tags/v"; unanchored as cosign's --certificate-identity-regexp, so write ^ and $`)
	r.Close()
	ok := true
	if root.Bad {
		ok = false
	} else if !root.Set || root.Val == "" {
		d.Fail(root.Range, "Missing trusted_root", "the sigstore block needs trusted_root: the path of the trusted root file (trusted_root.json).")
		ok = false
	}
	for _, p := range []struct {
		exact, pattern hclsettings.Setting[string]
		name, what     string
	}{
		{issuer, issuerRE, "issuer", `the OIDC issuer, e.g. "https://token.actions.githubusercontent.com"`},
		{identity, identityRE, "identity", "the identity the certificate must name (for GitHub, the workflow's URL with its ref)"},
	} {
		switch {
		case p.exact.Bad || p.pattern.Bad:
			ok = false
		case p.exact.Set && p.pattern.Set:
			d.Fail(p.pattern.Range, "Both "+p.name+" and "+p.name+"_regexp",
				"the sigstore block has %s at line %d and %s_regexp; keep one: %s for an exact match, %s_regexp for a pattern.",
				p.name, p.exact.Range.Start.Line, p.name, p.name, p.name)
			ok = false
		case p.pattern.Set:
			if p.pattern.Val == "" {
				d.Fail(p.pattern.Range, "Invalid "+p.name+"_regexp", "%s_regexp is empty, which would match any %s; give a pattern such as ^...$, or use %s.", p.name, p.name, p.name)
				ok = false
			} else if _, err := regexp.Compile(p.pattern.Val); err != nil {
				d.Fail(p.pattern.Range, "Invalid "+p.name+"_regexp", "%s_regexp %s is not a Go regular expression: %v.", p.name, p.pattern.Show(), err)
				ok = false
			} else if !strings.HasPrefix(p.pattern.Val, "^") && !strings.HasPrefix(p.pattern.Val, `\A`) {
				// Matching is unanchored, as cosign's: without ^ any value
				// that merely contains a match passes.
				rng := p.pattern.Range
				d.Diags = append(d.Diags, &hcl.Diagnostic{
					Severity: hcl.DiagWarning,
					Summary:  "Unanchored " + p.name + "_regexp",
					Detail: fmt.Sprintf("%s_regexp does not start with ^, and it is matched as cosign matches it, anywhere in the value: any %s that merely contains a match passes (https://evil.example/<your match>); start it with ^, and end it with $ to match the whole %s.",
						p.name, p.name, p.name),
					Subject: &rng,
				})
			}
		case !p.exact.Set || strings.TrimSpace(p.exact.Val) == "":
			d.Fail(p.exact.Range, "Missing "+p.name, "the sigstore block needs %s or %s_regexp: %s, or a regular expression for it.", p.name, p.name, p.what)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	f, read := readKeyFile(d, root, "trusted_root", baseDir)
	if !read {
		return nil
	}
	s := SigstoreSettings{TrustedRoot: f, Issuer: issuer.Val, IssuerRegexp: issuerRE.Val, Identity: identity.Val, IdentityRegexp: identityRE.Val}
	if _, err := loadSigstore(s); err != nil {
		d.Fail(root.Range, "Invalid sigstore settings", "sigstore: %v.", err)
	}
	return &s
}

// readKeyFile reads the file a path setting names (relative to baseDir). A
// problem is reported at the setting and gives ok false.
func readKeyFile(d *hclsettings.Decoder, s hclsettings.Setting[string], name, baseDir string) (f KeyFile, ok bool) {
	if s.Val == "" {
		d.Fail(s.Range, "Invalid "+name, "%s is empty; give the path of the file.", name)
		return KeyFile{}, false
	}
	path := s.Val
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
	}
	data, err := readLimited(path, maxKeyFileSize)
	if err != nil {
		d.Fail(s.Range, "Unreadable "+name,
			"%s %s: %v; give the path of a file the agent can read (a relative path is resolved against the config file's folder).", name, s.Show(), err)
		return KeyFile{}, false
	}
	return KeyFile{Path: path, Data: data}, true
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist", path)
		}
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not a file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB, which no key file is", path, max>>20)
	}
	return data, nil
}
