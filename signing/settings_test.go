package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/crypto/ssh"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings/hcltest"
	"github.com/dewy-agent/dewy-agent/internal/testsign"
)

func TestDecode(t *testing.T) {
	dir := t.TempDir()
	a, b := newMinisignKey(t), newMinisignKey(t)
	bFile, _ := b.pub.MarshalText() // the two lines of a minisign.pub
	signer := newSSHKey(t)
	writeFile(t, dir, "allowed_signers", "# release signers\n\nci@example.com "+signer.authorized()+" release key\n")
	src := `
minisign_public_keys = ["` + a.pub.String() + `", <<EOT
` + string(bFile) + `
EOT
]
ssh_allowed_signers = "allowed_signers"
`
	got, diags := Decode(hcltest.Block(t, src, nil), dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := &Settings{
		MinisignPublicKeys: []string{a.pub.String(), string(bFile)},
		SSH: &SSHSettings{
			AllowedSigners: KeyFile{Path: filepath.Join(dir, "allowed_signers"), Data: []byte("# release signers\n\nci@example.com " + signer.authorized() + " release key\n")},
			Namespace:      "file",
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v\nwant %#v", got, want)
	}
	if s := got.FileSuffixes(); !reflect.DeepEqual(s, []string{".minisig", ".sig"}) || !got.Files() || got.Images() {
		t.Errorf("FileSuffixes = %v, Files %v, Images %v", s, got.Files(), got.Images())
	}
	var none *Settings // no verify block
	if none.Files() || none.Images() || none.FileSuffixes() != nil {
		t.Error("nil Settings has a method")
	}
	v, err := got.New()
	if err != nil {
		t.Fatal(err)
	}
	if len(v.minisign) != 2 || v.ssh == nil || v.ssh.namespace != "file" || len(v.ssh.signers) != 1 || v.ssh.signers[0].principals != "ci@example.com" {
		t.Errorf("New = %+v", v)
	}

	// Reload: the same file decodes equal; a changed allowed signers file
	// makes the settings differ, so the app picks up the new keys.
	again, _ := Decode(hcltest.Block(t, src, nil), dir)
	if !reflect.DeepEqual(got, again) {
		t.Error("the same block decoded twice differs")
	}
	writeFile(t, dir, "allowed_signers", "ci@example.com "+newSSHKey(t).authorized()+"\n")
	changed, _ := Decode(hcltest.Block(t, src, nil), dir)
	if reflect.DeepEqual(got, changed) {
		t.Error("a changed allowed signers file decodes equal")
	}
}

// TestDecodeErrors: every mistake is reported at its attribute (or the
// list element, or the block), with what to do.
func TestDecodeErrors(t *testing.T) {
	dir := t.TempDir()
	good := newMinisignKey(t).pub.String()
	writeFile(t, dir, "not-a-key.pub", "hello\n")
	tests := []struct {
		name  string
		src   string
		files map[string]string
		want  []hcltest.Diag
	}{
		{
			name: "each attribute",
			src: `
minisign_public_keys = ["` + good + `", "RWQnotakey", "` + good + `"]
ssh_allowed_signers  = "missing_signers"
cosign_public_key    = "not-a-key.pub"
unknown              = 1
`,
			want: []hcltest.Diag{
				{Line: 2, Col: 85, Text: `minisign_public_keys key 2 "RWQnotakey": not a minisign public key`},
				{Line: 2, Col: 99, Text: "has key ID " + minisignKeyIDOf(t, good) + ", as key 1 does; list each key once"},
				{Line: 3, Col: 24, Text: `ssh_allowed_signers "missing_signers": ` + filepath.Join(dir, "missing_signers") + " does not exist; give the path of a file the agent can read"},
				{Line: 4, Col: 24, Text: `cosign_public_key "not-a-key.pub": `},
				{Line: 5, Col: 1, Text: `An argument named "unknown" is not expected here`},
			},
		},
		{
			name: "wrong types",
			src: `
minisign_public_keys = "` + good + `"
ssh_allowed_signers  = ["a", "b"]
`,
			want: []hcltest.Diag{
				{Line: 2, Col: 24, Text: "minisign_public_keys must be a list of minisign public keys"},
				{Line: 3, Col: 24, Text: "ssh_allowed_signers must be the path of an allowed signers file"},
			},
		},
		{name: "empty block", src: "\n", want: []hcltest.Diag{{Line: 1, Col: 1, Text: "a verify block must name at least one trusted key"}}},
		{name: "empty key list", src: "\nminisign_public_keys = []\n", want: []hcltest.Diag{{Line: 2, Col: 24, Text: "minisign_public_keys is empty"}}},
		{name: "key from env", src: "\nminisign_public_keys = [env(\"KEY\")]\n", want: []hcltest.Diag{{Line: 2, Col: 25, Text: "minisign_public_keys key 1: not a minisign public key"}}},
		{
			name: "namespace without signers",
			src:  "\nminisign_public_keys = [\"" + good + "\"]\nssh_namespace = \"git\"\n",
			want: []hcltest.Diag{{Line: 3, Col: 17, Text: "ssh_namespace is the namespace SSH signatures are checked for; add ssh_allowed_signers"}},
		},
		{
			name:  "empty namespace",
			src:   "\nssh_allowed_signers = \"s\"\nssh_namespace = \"\"\n",
			files: map[string]string{"s": "a " + newSSHKey(t).authorized() + "\n"},
			want:  []hcltest.Diag{{Line: 3, Col: 17, Text: "ssh_namespace is empty"}},
		},
		{
			name:  "malformed allowed signers line",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "# ok\nci@example.com " + newSSHKey(t).authorized() + "\nci@example.com ssh-ed25519\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: `ssh_allowed_signers "s": line 3: malformed line`}},
		},
		{
			name:  "a certificate listed",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "*@example.com cert-authority " + newSSHCert(t, newSSHKey(t), newSSHKey(t), ssh.UserCert, []string{"ci@example.com"}, 0, ssh.CertTimeInfinity).authorized() + "\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: "line 1: a certificate cannot be listed; list the signer's plain public key, or its CA's public key with the cert-authority option"}},
		},
		{
			name:  "bad valid-before",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "a valid-before=\"2030-01-01\" " + newSSHKey(t).authorized() + "\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: `line 1: valid-before: "2030-01-01" is not a time; write YYYYMMDD`}},
		},
		{
			name:  "key type mismatch",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "a ssh-rsa " + strings.Fields(newSSHKey(t).authorized())[1] + "\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: `line 1: key type "ssh-rsa" does not match the key, which is "ssh-ed25519"`}},
		},
		{
			name:  "unknown option",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "a no-touch-required=yes " + newSSHKey(t).authorized() + "\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: `line 1: unknown option "no-touch-required=yes"; the options are cert-authority, namespaces=`}},
		},
		{
			name:  "no signer",
			src:   "\nssh_allowed_signers = \"s\"\n",
			files: map[string]string{"s": "# nobody yet\n"},
			want:  []hcltest.Diag{{Line: 2, Col: 23, Text: "the file lists no signer"}},
		},
		{
			name: "sigstore block without its settings",
			src:  "\nsigstore {\n  issuer = \"https://token.actions.githubusercontent.com\"\n}\n",
			want: []hcltest.Diag{
				{Line: 2, Col: 1, Text: "the sigstore block needs trusted_root"},
				{Line: 2, Col: 1, Text: "the sigstore block needs identity or identity_regexp"},
			},
		},
		{
			name: "sigstore trusted root unreadable",
			src:  "\nsigstore {\n  trusted_root = \"/nonexistent/trusted_root.json\"\n  issuer = \"i\"\n  identity = \"x\"\n}\n",
			want: []hcltest.Diag{{Line: 3, Col: 18, Text: `trusted_root "/nonexistent/trusted_root.json": /nonexistent/trusted_root.json does not exist`}},
		},
		{
			name:  "sigstore trusted root not JSON",
			src:   "\nsigstore {\n  trusted_root = \"root.json\"\n  issuer = \"i\"\n  identity = \"x\"\n}\n",
			files: map[string]string{"root.json": "not json"},
			want:  []hcltest.Diag{{Line: 3, Col: 18, Text: "sigstore: "}},
		},
		{
			name: "sigstore regexps that do not compile",
			src:  "\nsigstore {\n  trusted_root    = \"root.json\"\n  issuer_regexp   = \"[\"\n  identity_regexp = \"^ci@(example\"\n}\n",
			want: []hcltest.Diag{
				{Line: 4, Col: 21, Text: `issuer_regexp "[" is not a Go regular expression: error parsing regexp: missing closing ]`},
				{Line: 5, Col: 21, Text: `identity_regexp "^ci@(example" is not a Go regular expression: error parsing regexp: missing closing )`},
			},
		},
		{
			name: "sigstore identity and identity_regexp",
			src:  "\nsigstore {\n  trusted_root    = \"root.json\"\n  issuer          = \"i\"\n  issuer_regexp   = \"^i$\"\n  identity        = \"x\"\n  identity_regexp = \"^x$\"\n}\n",
			want: []hcltest.Diag{
				{Line: 5, Col: 21, Text: "the sigstore block has issuer at line 4 and issuer_regexp; keep one"},
				{Line: 7, Col: 21, Text: "the sigstore block has identity at line 6 and identity_regexp; keep one"},
			},
		},
		{
			name: "sigstore blank identity",
			src:  "\nsigstore {\n  trusted_root = \"root.json\"\n  issuer       = \"i\"\n  identity     = \"  \"\n}\n",
			want: []hcltest.Diag{{Line: 5, Col: 18, Text: "the sigstore block needs identity or identity_regexp"}},
		},
		{
			name: "sigstore empty identity_regexp",
			src:  "\nsigstore {\n  trusted_root    = \"root.json\"\n  issuer          = \"i\"\n  identity_regexp = \"\"\n}\n",
			want: []hcltest.Diag{{Line: 5, Col: 21, Text: "identity_regexp is empty, which would match any identity"}},
		},
		{
			name: "two sigstore blocks",
			src:  "\nminisign_public_keys = [\"" + good + "\"]\nsigstore {\n}\nsigstore {\n}\n",
			want: []hcltest.Diag{
				{Line: 3, Col: 1, Text: "the sigstore block needs trusted_root"},
				{Line: 3, Col: 1, Text: "the sigstore block needs issuer"},
				{Line: 3, Col: 1, Text: "the sigstore block needs identity"},
				{Line: 5, Col: 1, Text: "at most one sigstore block and the first is at line 3"},
			},
		},
		{
			name: "a folder for a file",
			src:  "\ncosign_public_key = \".\"\n",
			want: []hcltest.Diag{{Line: 2, Col: 21, Text: "is a folder, not a file"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			s, diags := Decode(hcltest.Block(t, tt.src, map[string]string{"KEY": "a secret-looking value"}), dir)
			if s != nil {
				t.Errorf("Decode returned settings %+v with errors", s)
			}
			hcltest.ExpectDiags(t, diags, tt.want)
			if strings.Contains(diags.Error(), "secret-looking") {
				t.Errorf("a value from env() is shown: %v", diags)
			}
		})
	}
}

func minisignKeyIDOf(t *testing.T, text string) string {
	k, err := parseMinisignKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return minisignKeyID(k.ID())
}

// cosignPEM is a key pair and its cosign.pub as `cosign generate-key-pair`
// writes it: an ECDSA P-256 key in a PEM PUBLIC KEY block.
func cosignPEM(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestDecodeCosign: cosign_public_key is read and parsed at decode. It needs
// the cosign parser (signing/cosign.go), built by another part of the work.
func TestDecodeCosign(t *testing.T) {
	_, key := cosignPEM(t)
	if _, err := parseCosignKey(key); err != nil && strings.Contains(err.Error(), "not built yet") {
		t.Skip("parseCosignKey is still a stub here; it comes with signing/cosign.go")
	}
	dir := t.TempDir()
	writeFile(t, dir, "cosign.pub", string(key))
	got, diags := Decode(hcltest.Block(t, "\ncosign_public_key = \"cosign.pub\"\n", nil), dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := &Settings{CosignPublicKey: &KeyFile{Path: filepath.Join(dir, "cosign.pub"), Data: key}}
	if !reflect.DeepEqual(got, want) || !got.Images() || got.Files() || len(got.FileSuffixes()) != 0 {
		t.Errorf("Decode = %+v, want %+v", got, want)
	}
	if _, err := got.New(); err != nil {
		t.Error(err)
	}
}

// TestDecodeSigstore: a sigstore block with identity_regexp decodes to
// settings that build a verifier.
func TestDecodeSigstore(t *testing.T) {
	dir := t.TempDir()
	rootJSON := testsign.TrustedRoot(t, testsign.NewVirtualSigstore(t), true)
	writeFile(t, dir, "trusted_root.json", string(rootJSON))
	src := `
sigstore {
  trusted_root    = "trusted_root.json"
  issuer_regexp   = "^https://token\\.actions\\.githubusercontent\\.com$"
  identity_regexp = "^https://github\\.com/org/api/\\.github/workflows/release\\.yml@refs/tags/v"
}
`
	got, diags := Decode(hcltest.Block(t, src, nil), dir)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	want := &Settings{Sigstore: &SigstoreSettings{
		TrustedRoot:    KeyFile{Path: filepath.Join(dir, "trusted_root.json"), Data: rootJSON},
		IssuerRegexp:   `^https://token\.actions\.githubusercontent\.com$`,
		IdentityRegexp: `^https://github\.com/org/api/\.github/workflows/release\.yml@refs/tags/v`,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Decode = %#v\nwant %#v", got.Sigstore, want.Sigstore)
	}
	if _, err := got.New(); err != nil {
		t.Fatal(err)
	}

	// A pattern without ^ matches anywhere in the value, as cosign's:
	// allowed, with a warning at the attribute.
	unanchored := `
sigstore {
  trusted_root    = "trusted_root.json"
  issuer          = "https://token.actions.githubusercontent.com"
  identity_regexp = "github\\.com/org/api/"
}
`
	got, diags = Decode(hcltest.Block(t, unanchored, nil), dir)
	if diags.HasErrors() || got == nil || got.Sigstore.IdentityRegexp != `github\.com/org/api/` {
		t.Fatalf("Decode = %+v, %v", got, diags)
	}
	hcltest.ExpectDiags(t, diags, []hcltest.Diag{{Line: 5, Col: 21, Text: "identity_regexp does not start with ^, and it is matched as cosign matches it"}})
	if diags[0].Severity != hcl.DiagWarning {
		t.Errorf("severity %v, want a warning", diags[0].Severity)
	}
}
