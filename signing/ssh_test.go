package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshKey is an SSH key pair made in the test.
type sshKey struct {
	priv   crypto.PrivateKey
	signer ssh.Signer
}

func newSSHKey(t testing.TB) sshKey { return newSSHKeyOf(t, "ed25519") }

func newSSHKeyOf(t testing.TB, kind string) sshKey {
	t.Helper()
	var priv crypto.PrivateKey
	var err error
	switch kind {
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{priv: priv, signer: signer}
}

// authorized is the key as a .pub file has it: "ssh-ed25519 AAAA...".
func (k sshKey) authorized() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k.signer.PublicKey())))
}

func (k sshKey) fingerprint() string { return ssh.FingerprintSHA256(k.signer.PublicKey()) }

// writePrivate writes the private key as ssh-keygen reads it, mode 0600.
func (k sshKey) writePrivate(t testing.TB, dir string) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(k.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "id_"+k.signer.PublicKey().Type())
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sign makes an armored SSH signature in Go, as ssh-keygen -Y sign does.
// algo is the signature algorithm ("" for the key's default).
func (k sshKey) sign(t testing.TB, content []byte, namespace, hashAlg, algo string) []byte {
	t.Helper()
	var digest []byte
	if hashAlg == "sha256" {
		d := sha256.Sum256(content)
		digest = d[:]
	} else {
		d := sha512.Sum512(content)
		digest = d[:]
	}
	data := sshSignedData(namespace, "", hashAlg, digest)
	var sig *ssh.Signature
	var err error
	if algo != "" {
		sig, err = k.signer.(ssh.AlgorithmSigner).SignWithAlgorithm(rand.Reader, data, algo)
	} else {
		sig, err = k.signer.Sign(rand.Reader, data)
	}
	if err != nil {
		t.Fatal(err)
	}
	blob := append([]byte(sshSigMagic), ssh.Marshal(struct {
		Version                     uint32
		PublicKey                   []byte
		Namespace, Reserved, HashAl string
		Signature                   []byte
	}{1, k.signer.PublicKey().Marshal(), namespace, "", hashAlg, ssh.Marshal(sig)})...)
	return armorSSH(blob)
}

func armorSSH(blob []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString(blob)
	var out bytes.Buffer
	out.WriteString(sshArmorBegin + "\n")
	for len(b64) > 70 {
		out.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	out.WriteString(b64 + "\n" + sshArmorEnd + "\n")
	return out.Bytes()
}

// sshVerifier is a verifier of the ssh method over an allowed signers file.
func sshVerifier(t testing.TB, allowed, namespace string) *Verifier {
	t.Helper()
	v, err := (&Settings{SSH: &SSHSettings{AllowedSigners: KeyFile{Path: "allowed_signers", Data: []byte(allowed)}, Namespace: namespace}}).New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sshKeygenVerify asks the real ssh-keygen whether the release verifies.
func sshKeygenVerify(t testing.TB, r release, allowed, identity, namespace string) bool {
	t.Helper()
	p := writeFile(t, t.TempDir(), "allowed_signers", allowed)
	in, err := os.Open(r.path())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", p, "-I", identity, "-n", namespace, "-s", r.path()+SSHSuffix)
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("ssh-keygen: %v", err)
	}
	t.Logf("ssh-keygen -Y verify: %s", bytes.TrimSpace(out))
	return err == nil
}

func haveSSHKeygen(t testing.TB) {
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed (openssh-client); the Go-made signatures are tested without it")
	}
}

func TestSSH(t *testing.T) {
	haveSSHKeygen(t)
	content := bytes.Repeat([]byte("release bytes "), 5000)
	key, other := newSSHKey(t), newSSHKey(t)
	const who = "ci@example.com"
	listed := who + " " + key.authorized() + " release key\n"
	name := who + " (" + key.fingerprint() + ")"
	keygen := func(k sshKey, ns string) func(t *testing.T, r release) {
		return func(t *testing.T, r release) {
			run(t, "ssh-keygen", "-Y", "sign", "-n", ns, "-f", k.writePrivate(t, t.TempDir()), r.path())
		}
	}
	gosig := func(k sshKey, ns, hashAlg, algo string) func(t *testing.T, r release) {
		return func(t *testing.T, r release) { r.writeSig(t, SSHSuffix, k.sign(t, content, ns, hashAlg, algo)) }
	}
	tests := []struct {
		name      string
		allowed   string
		sign      func(t *testing.T, r release) // nil: no signature
		tamper    bool
		namespace string // "" is "file"
		// wantWhy is "" for a pass; wantKey is the key shown either way.
		wantKey, wantWhy string
		// noCrossCheck: ssh-keygen is not asked (it cannot see the case).
		noCrossCheck bool
	}{
		{name: "good, ssh-keygen", allowed: listed, sign: keygen(key, "file"), wantKey: name},
		{name: "good, Go, sha256", allowed: listed, sign: gosig(key, "file", "sha256", ""), wantKey: name},
		{name: "good, Go, sha512", allowed: listed, sign: gosig(key, "file", "sha512", ""), wantKey: name},
		{name: "good, other namespace", allowed: listed, sign: keygen(key, "releases@example.com"), namespace: "releases@example.com", wantKey: name},
		{name: "quoted principals and options", allowed: `"ci@example.com,ops@example.com" namespaces="git,file",valid-after="20200101Z" ` + key.authorized() + "\n",
			sign: keygen(key, "file"), wantKey: "ci@example.com,ops@example.com (" + key.fingerprint() + ")"},
		{name: "listed twice, the second allows", allowed: who + ` namespaces="git" ` + key.authorized() + "\n" + listed,
			sign: keygen(key, "file"), wantKey: name},
		{name: "wrong key", allowed: listed, sign: keygen(other, "file"), wantKey: other.fingerprint(),
			wantWhy: "signed by key " + other.fingerprint() + ", which is not in ssh_allowed_signers"},
		{name: "tampered artifact", allowed: listed, sign: keygen(key, "file"), tamper: true, wantKey: name,
			wantWhy: "the signature does not match the artifact"},
		{name: "missing", allowed: listed, wantWhy: "no app_linux_amd64.tar.gz.sig beside the artifact"},
		{name: "malformed, not armored", allowed: listed, sign: func(t *testing.T, r release) { r.writeSig(t, SSHSuffix, []byte("hello")) },
			wantWhy: "malformed signature: no -----BEGIN SSH SIGNATURE----- line"},
		{name: "malformed, bad blob", allowed: listed, sign: func(t *testing.T, r release) { r.writeSig(t, SSHSuffix, armorSSH([]byte("SSHSIG\x00\x00"))) },
			wantWhy: "malformed signature: not an SSHSIG blob"},
		{name: "malformed, a minisign signature", allowed: listed, sign: func(t *testing.T, r release) {
			r.writeSig(t, SSHSuffix, newMinisignKey(t).sign(t, content, "c"))
		}, wantWhy: "malformed signature: no -----BEGIN SSH SIGNATURE----- line"},
		{name: "wrong namespace", allowed: listed, sign: keygen(key, "git"), wantKey: key.fingerprint(),
			wantWhy: `signed for namespace "git", not "file" (ssh_namespace); sign with ssh-keygen -Y sign -n file`},
		{name: "namespace not allowed for the signer", allowed: who + ` namespaces="git,*@example.com" ` + key.authorized() + "\n",
			sign: keygen(key, "file"), wantKey: name, wantWhy: `the allowed signer at line 1 is not allowed namespace "file" (namespaces="git,*@example.com")`},
		{name: "namespace denied by a negation", allowed: who + ` namespaces="f*,!file" ` + key.authorized() + "\n",
			sign: keygen(key, "file"), wantKey: name, wantWhy: `is not allowed namespace "file"`},
		{name: "expired signer", allowed: who + ` valid-before="20200101Z" ` + key.authorized() + "\n",
			sign: keygen(key, "file"), wantKey: name, wantWhy: "the allowed signer at line 1 has expired: valid-before 2020-01-01T00:00:00Z"},
		{name: "signer not valid yet", allowed: who + ` valid-after="29990101120000Z" ` + key.authorized() + "\n",
			sign: keygen(key, "file"), wantKey: name, wantWhy: "the allowed signer at line 1 is not valid yet: valid-after 2999-01-01T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRelease(t, content)
			if tt.sign != nil {
				tt.sign(t, r)
			}
			if tt.tamper {
				r.tamper(t)
			}
			ns := tt.namespace
			if ns == "" {
				ns = "file"
			}
			got, err := r.verify(t, sshVerifier(t, tt.allowed, ns))
			wantSSH(t, got, err, tt.wantKey, tt.wantWhy)
			if tt.sign == nil || tt.noCrossCheck {
				return
			}
			if agrees := sshKeygenVerify(t, r, tt.allowed, who, ns); agrees != (tt.wantWhy == "") {
				t.Errorf("ssh-keygen -Y verify says %v, we say %v", agrees, tt.wantWhy == "")
			}
		})
	}
}

// TestSSHKeyTypes: ssh-keygen's signatures with ECDSA and RSA keys (RSA
// signs with rsa-sha2-512) verify; an RSA signature with SHA-1 is refused.
func TestSSHKeyTypes(t *testing.T) {
	haveSSHKeygen(t)
	content := []byte("a release")
	for _, kind := range []string{"ecdsa", "rsa"} {
		t.Run(kind, func(t *testing.T) {
			key := newSSHKeyOf(t, kind)
			allowed := "ci@example.com " + key.authorized() + "\n"
			r := newRelease(t, content)
			run(t, "ssh-keygen", "-Y", "sign", "-n", "file", "-f", key.writePrivate(t, t.TempDir()), r.path())
			got, err := r.verify(t, sshVerifier(t, allowed, "file"))
			if err != nil || got.Key != "ci@example.com ("+key.fingerprint()+")" {
				t.Errorf("verified = %+v, %v", got, err)
			}
			r.tamper(t)
			_, err = r.verify(t, sshVerifier(t, allowed, "file"))
			wantRejected(t, err, SSH, "ci@example.com ("+key.fingerprint()+")", "does not match the artifact")
		})
	}
	t.Run("rsa with sha1", func(t *testing.T) {
		key := newSSHKeyOf(t, "rsa")
		r := newRelease(t, content)
		r.writeSig(t, SSHSuffix, key.sign(t, content, "file", "sha512", ssh.KeyAlgoRSA))
		allowed := "ci@example.com " + key.authorized() + "\n"
		_, err := r.verify(t, sshVerifier(t, allowed, "file"))
		wantRejected(t, err, SSH, key.fingerprint(), "RSA with SHA-1 (ssh-rsa), which is refused")
		if sshKeygenVerify(t, r, allowed, "ci@example.com", "file") {
			t.Error("ssh-keygen -Y verify accepts the SHA-1 signature we refuse")
		}
		// The same key's rsa-sha2-512 signature made in Go passes: only
		// the algorithm was refused.
		r.writeSig(t, SSHSuffix, key.sign(t, content, "file", "sha512", ssh.KeyAlgoRSASHA512))
		if _, err := r.verify(t, sshVerifier(t, allowed, "file")); err != nil {
			t.Error(err)
		}
	})
}

// TestSSHClock: valid-after and valid-before are checked against the
// verifier's clock.
func TestSSHClock(t *testing.T) {
	content := []byte("a release")
	key := newSSHKey(t)
	allowed := `ci@example.com valid-after="20240101",valid-before="20250101Z" ` + key.authorized() + "\n"
	r := newRelease(t, content)
	r.writeSig(t, SSHSuffix, key.sign(t, content, "file", "sha512", ""))
	name := "ci@example.com (" + key.fingerprint() + ")"
	for _, tt := range []struct {
		now     time.Time
		wantWhy string
	}{
		{time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), ""},
		{time.Date(2025, 1, 1, 0, 0, 1, 0, time.UTC), "has expired"},
		{time.Date(2023, 12, 30, 0, 0, 0, 0, time.UTC), "is not valid yet"},
	} {
		v := sshVerifier(t, allowed, "file")
		v.Now = func() time.Time { return tt.now }
		_, err := r.verify(t, v)
		if tt.wantWhy == "" {
			if err != nil {
				t.Errorf("at %v: %v", tt.now, err)
			}
			continue
		}
		wantRejected(t, err, SSH, name, tt.wantWhy)
	}
}

func TestParseSignerTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"20250102Z":       time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC),
		"202501021304Z":   time.Date(2025, 1, 2, 13, 4, 0, 0, time.UTC),
		"20250102130405Z": time.Date(2025, 1, 2, 13, 4, 5, 0, time.UTC),
		"20250102":        time.Date(2025, 1, 2, 0, 0, 0, 0, time.Local),
	} {
		got, err := parseSignerTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSignerTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "2025", "2025-01-02", "20251302Z", "202501021304051Z"} {
		if _, err := parseSignerTime(bad); err == nil {
			t.Errorf("parseSignerTime(%q) accepted", bad)
		}
	}
}

// FuzzParseSSHSignature: a signature file is untrusted input; parsing it
// never panics, and what parses has a key.
func FuzzParseSSHSignature(f *testing.F) {
	k := newSSHKey(f)
	f.Add(k.sign(f, []byte("x"), "file", "sha512", ""))
	cert := newSSHCert(f, newSSHKey(f), k, ssh.UserCert, []string{"ci@example.com"}, 0, ssh.CertTimeInfinity)
	f.Add(cert.sign(f, []byte("x"), "file", "sha512", ""))
	f.Add(armorSSH([]byte("SSHSIG\x00\x00\x00\x01")))
	f.Add([]byte(sshArmorBegin + "\n" + sshArmorEnd))
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseSSHSignature(b); err == nil && s.key == nil {
			t.Error("parsed without a key")
		}
	})
}

// FuzzParseAllowedSigners: an allowed signers file never panics the parser,
// and every signer it accepts has principals and a key.
func FuzzParseAllowedSigners(f *testing.F) {
	k := newSSHKey(f).authorized()
	f.Add("a " + k + "\n")
	f.Add(`"a b,c" namespaces="file,git",valid-after="20240101Z" ` + k + " comment\n")
	f.Add(`a cert-authority ` + k)
	f.Add(`*@example.com cert-authority,namespaces="file",valid-before="20300101Z" ` + k + "\n")
	f.Add(`a valid-before="2024` + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		signers, err := parseAllowedSigners([]byte(s))
		for _, sg := range signers {
			if err != nil || sg.principals == "" || sg.key == nil || sg.line < 1 {
				t.Errorf("signer %+v accepted with error %v", sg, err)
			}
		}
	})
}

// newSSHCert is key with an OpenSSH certificate of type typ (ssh.UserCert
// or ssh.HostCert) signed by ca, as ssh-keygen -s makes it; its signer
// signs with the certificate as its public key.
func newSSHCert(t testing.TB, ca, key sshKey, typ uint32, principals []string, validAfter, validBefore uint64) sshKey {
	t.Helper()
	cert := &ssh.Certificate{
		Key:             key.signer.PublicKey(),
		Serial:          7,
		CertType:        typ,
		KeyId:           "release-ci",
		ValidPrincipals: principals,
		ValidAfter:      validAfter,
		ValidBefore:     validBefore,
	}
	if err := cert.SignCert(rand.Reader, ca.signer); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(cert, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{priv: key.priv, signer: signer}
}

// writeCertKey writes k's private key and, beside it, its certificate as
// ssh-keygen names them (id and id-cert.pub); it returns the certificate's
// path, which ssh-keygen -Y sign -f takes to sign with the certificate.
func (k sshKey) writeCertKey(t testing.TB, dir string) string {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(k.priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "id"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "id-cert.pub", k.authorized()+"\n")
}

// TestSSHCertificate: a signature made with a user certificate verifies
// against a cert-authority line naming its CA, when one of the
// certificate's principals matches the line's and the certificate and the
// line are valid; ssh-keygen -Y verify -I ci@example.com agrees.
func TestSSHCertificate(t *testing.T) {
	haveSSHKeygen(t)
	content := bytes.Repeat([]byte("release bytes "), 3000)
	ca, otherCA, key := newSSHKey(t), newSSHKey(t), newSSHKey(t)
	now := uint64(time.Now().Unix())
	hour := uint64(3600)
	principals := []string{"ci@example.com"}
	good := newSSHCert(t, ca, key, ssh.UserCert, principals, now-hour, now+hour)
	caLine := "*@example.com cert-authority " + ca.authorized() + " release CA\n"
	certName := func(c sshKey) string {
		return certKeyName("", c.signer.PublicKey().(*ssh.Certificate))
	}
	name := "ci@example.com " + certName(good)
	if want := `ci@example.com certificate "release-ci" (` + key.fingerprint() + ") from CA " + ca.fingerprint(); name != want {
		t.Fatalf("name %q, want %q", name, want)
	}
	// A certificate whose CA signature is another CA's, relabelled.
	forged := newSSHCert(t, otherCA, key, ssh.UserCert, principals, now-hour, now+hour)
	forgedCert := *forged.signer.PublicKey().(*ssh.Certificate)
	forgedCert.SignatureKey = ca.signer.PublicKey()
	forgedSigner, err := ssh.NewCertSigner(&forgedCert, key.signer)
	if err != nil {
		t.Fatal(err)
	}
	forged.signer = forgedSigner

	// A certificate an RSA CA signed with SHA-1.
	rsaCA := newSSHKeyOf(t, "rsa")
	sha1CA, err := ssh.NewSignerWithAlgorithms(rsaCA.signer.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}
	sha1Cert := newSSHCert(t, sshKey{priv: rsaCA.priv, signer: sha1CA}, key, ssh.UserCert, principals, now-hour, now+hour)
	if f := sha1Cert.signer.PublicKey().(*ssh.Certificate).Signature.Format; f != ssh.KeyAlgoRSA {
		t.Fatalf("the CA signed with %s, want ssh-rsa", f)
	}
	sha512Cert := newSSHCert(t, rsaCA, key, ssh.UserCert, principals, now-hour, now+hour)
	rsaCALine := "*@example.com cert-authority " + rsaCA.authorized() + "\n"

	keygen := func(k sshKey) func(t *testing.T, r release) {
		return func(t *testing.T, r release) {
			run(t, "ssh-keygen", "-Y", "sign", "-n", "file", "-f", k.writeCertKey(t, t.TempDir()), r.path())
		}
	}
	gosig := func(k sshKey) func(t *testing.T, r release) {
		return func(t *testing.T, r release) { r.writeSig(t, SSHSuffix, k.sign(t, content, "file", "sha512", "")) }
	}
	tests := []struct {
		name             string
		allowed          string
		sign             func(t *testing.T, r release)
		tamper           bool
		wantKey, wantWhy string // wantWhy "" for a pass
		noCrossCheck     bool   // ssh-keygen is not asked
	}{
		{name: "RSA CA, rsa-sha2-512", allowed: rsaCALine, sign: keygen(sha512Cert),
			wantKey: `ci@example.com certificate "release-ci" (` + key.fingerprint() + ") from CA " + rsaCA.fingerprint()},
		{name: "RSA CA signing with SHA-1", allowed: rsaCALine, sign: gosig(sha1Cert), noCrossCheck: true,
			wantKey: `certificate "release-ci" (` + key.fingerprint() + ") from CA " + rsaCA.fingerprint(), wantWhy: "signed by its CA with RSA and SHA-1 (ssh-rsa), which is refused"},
		{name: "good, ssh-keygen", allowed: caLine, sign: keygen(good), wantKey: name},
		{name: "good, Go", allowed: caLine, sign: gosig(good), wantKey: name},
		{name: "good, second principal matches, options on the line",
			allowed: `"ops@example.org,*@example.com" cert-authority,namespaces="file",valid-after="20200101Z" ` + ca.authorized() + "\n",
			sign:    keygen(newSSHCert(t, ca, key, ssh.UserCert, []string{"dev@other.org", "ci@example.com"}, now-hour, now+hour)), wantKey: name},
		{name: "tampered artifact", allowed: caLine, sign: keygen(good), tamper: true, wantKey: name,
			wantWhy: "the signature does not match the artifact"},
		{name: "cert from another CA", allowed: caLine, sign: keygen(newSSHCert(t, otherCA, key, ssh.UserCert, principals, now-hour, now+hour)),
			wantKey: `certificate "release-ci" (` + key.fingerprint() + ") from CA " + otherCA.fingerprint(),
			wantWhy: "signed with a certificate from CA " + otherCA.fingerprint() + ", which is not a cert-authority in ssh_allowed_signers"},
		{name: "expired cert", allowed: caLine, sign: keygen(newSSHCert(t, ca, key, ssh.UserCert, principals, now-2*hour, now-hour)),
			wantKey: certName(good), wantWhy: "the certificate has expired: valid before " + time.Unix(int64(now-hour), 0).UTC().Format(time.RFC3339)},
		{name: "cert not valid yet", allowed: caLine, sign: keygen(newSSHCert(t, ca, key, ssh.UserCert, principals, now+hour, now+2*hour)),
			wantKey: certName(good), wantWhy: "the certificate is not valid yet"},
		{name: "principal not allowed", allowed: caLine, sign: keygen(newSSHCert(t, ca, key, ssh.UserCert, []string{"dev@other.org"}, now-hour, now+hour)),
			wantKey: certName(good), wantWhy: `the certificate's principals ["dev@other.org"] match none of the cert-authority at line 1 ("*@example.com")`},
		{name: "principal denied by a negation", allowed: "*@example.com,!ci@example.com cert-authority " + ca.authorized() + "\n", sign: keygen(good),
			wantKey: certName(good), wantWhy: "match none of the cert-authority at line 1"},
		{name: "cert without principals", allowed: caLine, sign: keygen(newSSHCert(t, ca, key, ssh.UserCert, nil, now-hour, now+hour)),
			wantKey: certName(good), wantWhy: "match none of the cert-authority"},
		{name: "host cert refused", allowed: caLine, sign: gosig(newSSHCert(t, ca, key, ssh.HostCert, principals, now-hour, now+hour)),
			wantKey: certName(good), wantWhy: "signed with a host certificate"},
		{name: "namespace not allowed for the CA", allowed: `*@example.com cert-authority,namespaces="git" ` + ca.authorized() + "\n", sign: keygen(good),
			wantKey: certName(good), wantWhy: `the allowed signer at line 1 is not allowed namespace "file"`},
		{name: "CA line expired", allowed: `*@example.com cert-authority,valid-before="20200101Z" ` + ca.authorized() + "\n", sign: keygen(good),
			wantKey: certName(good), wantWhy: "the allowed signer at line 1 has expired"},
		{name: "the certified key listed without cert-authority", allowed: "ci@example.com " + key.authorized() + "\n", sign: keygen(good),
			wantKey: certName(good), wantWhy: "which is not a cert-authority in ssh_allowed_signers"},
		{name: "signed by the CA key itself", allowed: caLine, sign: func(t *testing.T, r release) {
			run(t, "ssh-keygen", "-Y", "sign", "-n", "file", "-f", ca.writePrivate(t, t.TempDir()), r.path())
		}, wantKey: ca.fingerprint(), wantWhy: "which ssh_allowed_signers lists at line 1 as a cert-authority"},
		{name: "forged CA signature", allowed: caLine, sign: gosig(forged),
			wantKey: certName(good), wantWhy: "the certificate is not valid: ssh: certificate signature does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRelease(t, content)
			tt.sign(t, r)
			if tt.tamper {
				r.tamper(t)
			}
			got, err := r.verify(t, sshVerifier(t, tt.allowed, "file"))
			wantSSH(t, got, err, tt.wantKey, tt.wantWhy)
			if tt.noCrossCheck {
				return
			}
			if agrees := sshKeygenVerify(t, r, tt.allowed, "ci@example.com", "file"); agrees != (tt.wantWhy == "") {
				t.Errorf("ssh-keygen -Y verify says %v, we say %v", agrees, tt.wantWhy == "")
			}
		})
	}
}

// wantSSH checks an SSH verdict: refused with wantWhy naming wantKey, or,
// with no wantWhy, verified by wantKey.
func wantSSH(t *testing.T, got Verified, err error, wantKey, wantWhy string) {
	t.Helper()
	if wantWhy != "" {
		wantRejected(t, err, SSH, wantKey, wantWhy)
	} else if err != nil {
		t.Fatal(err)
	} else if got != (Verified{Method: SSH, Key: wantKey}) {
		t.Errorf("verified = %+v, want ssh key %q", got, wantKey)
	}
}
