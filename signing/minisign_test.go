package signing

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"aead.dev/minisign"
)

// minisignKey is a key pair made in the test.
type minisignKey struct {
	pub  minisign.PublicKey
	priv minisign.PrivateKey
}

func newMinisignKey(t testing.TB) minisignKey {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return minisignKey{pub, priv}
}

func (k minisignKey) id() string { return minisignKeyID(k.pub.ID()) }

// sign makes a prehashed ("ED") signature, as minisign 0.10 and later do.
func (k minisignKey) sign(t testing.TB, content []byte, comment string) []byte {
	t.Helper()
	r := minisign.NewReader(bytes.NewReader(content))
	if _, err := r.Read(make([]byte, len(content)+1)); err != nil && len(content) > 0 {
		t.Fatal(err)
	}
	return r.SignWithComments(k.priv, comment, "signature from the test")
}

func minisignVerifier(t testing.TB, keys ...string) *Verifier {
	t.Helper()
	v, err := (&Settings{MinisignPublicKeys: keys}).New()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMinisign(t *testing.T) {
	content := bytes.Repeat([]byte("release bytes "), 5000)
	key, other := newMinisignKey(t), newMinisignKey(t)
	tests := []struct {
		name   string
		sig    func() []byte // nil: no signature file
		modify func(release)
		// wantWhy is "" for a pass.
		wantKey, wantWhy string
	}{
		{name: "good", sig: func() []byte { return key.sign(t, content, "v1.2.3 built by ci") }, wantKey: key.id()},
		{name: "legacy Ed signature", sig: func() []byte {
			return minisign.SignWithComments(key.priv, content, "legacy", "untrusted")
		}, wantKey: key.id()},
		{name: "wrong key", sig: func() []byte { return other.sign(t, content, "c") }, wantKey: other.id(),
			wantWhy: "signed by key " + other.id() + ", which is not in minisign_public_keys"},
		{name: "tampered artifact", sig: func() []byte { return key.sign(t, content, "c") }, modify: func(r release) { r.tamper(t) },
			wantKey: key.id(), wantWhy: "the signature does not match the artifact"},
		{name: "tampered legacy artifact", sig: func() []byte { return minisign.SignWithComments(key.priv, content, "c", "u") },
			modify: func(r release) { r.tamper(t) }, wantKey: key.id(), wantWhy: "the signature does not match the artifact"},
		{name: "altered trusted comment", sig: func() []byte {
			return bytes.Replace(key.sign(t, content, "v1.2.3"), []byte("trusted comment: v1.2.3"), []byte("trusted comment: v9.9.9"), 1)
		}, wantKey: key.id(), wantWhy: "does not match the artifact (or its trusted comment was altered)"},
		{name: "missing", wantWhy: "no app_linux_amd64.tar.gz.minisig beside the artifact"},
		{name: "malformed", sig: func() []byte { return []byte("untrusted comment: x\nnot base64!\n") }, wantWhy: "malformed signature: "},
		{name: "malformed base64", sig: func() []byte {
			return []byte("untrusted comment: x\nAAAA\ntrusted comment: y\nAAAA\n")
		}, wantWhy: "malformed signature: invalid signature length 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRelease(t, content)
			if tt.sig != nil {
				r.writeSig(t, MinisignSuffix, tt.sig())
			}
			if tt.modify != nil {
				tt.modify(r)
			}
			got, err := r.verify(t, minisignVerifier(t, key.pub.String()))
			if tt.wantWhy != "" {
				wantRejected(t, err, Minisign, tt.wantKey, tt.wantWhy)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != Minisign || got.Key != tt.wantKey || got.Comment == "" {
				t.Errorf("verified = %+v, want minisign key %s with its trusted comment", got, tt.wantKey)
			}
		})
	}
}

// TestMinisignComment: the trusted comment, which the signature covers, is
// what Verified shows; the untrusted one is ignored.
func TestMinisignComment(t *testing.T) {
	content := []byte("a small release")
	key := newMinisignKey(t)
	r := newRelease(t, content)
	r.writeSig(t, MinisignSuffix, key.sign(t, content, "timestamp:1700000000\tfile:app v1.2.3"))
	got, err := r.verify(t, minisignVerifier(t, key.pub.String()))
	if err != nil {
		t.Fatal(err)
	}
	want := Verified{Method: Minisign, Key: key.id(), Comment: "timestamp:1700000000\tfile:app v1.2.3"}
	if got != want {
		t.Errorf("verified = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "minisign key "+key.id()+" (trusted comment: timestamp:1700000000\tfile:app v1.2.3)" {
		t.Errorf("String() = %q", s)
	}
}

// TestMinisignLegacyTooLarge: a legacy signature covers the whole message,
// which is read into memory; over the cap the release is refused, with what
// to do. The artifact is a sparse file, so the test writes nothing.
func TestMinisignLegacyTooLarge(t *testing.T) {
	key := newMinisignKey(t)
	r := newRelease(t, nil)
	if err := os.Truncate(r.path(), maxLegacyMinisignSize+1); err != nil {
		t.Fatal(err)
	}
	r.writeSig(t, MinisignSuffix, minisign.SignWithComments(key.priv, []byte("whatever"), "c", "u"))
	_, err := r.verify(t, minisignVerifier(t, key.pub.String()))
	wantRejected(t, err, Minisign, key.id(), "legacy (not prehashed) signature over an artifact of 64 MiB, larger than the 64 MiB")
}

// TestMinisignTool: signatures made by the real minisign tool (prehashed by
// default, legacy with -l) verify against its minisign.pub, given as the
// key line or as the whole file, and its key ID is shown as minisign prints
// it.
func TestMinisignTool(t *testing.T) {
	if _, err := exec.LookPath("minisign"); err != nil {
		t.Skip("the minisign tool is not installed (apt-get install minisign); signatures made by the library are tested above")
	}
	dir := t.TempDir()
	pubPath, secPath := filepath.Join(dir, "minisign.pub"), filepath.Join(dir, "minisign.key")
	run(t, "minisign", "-G", "-W", "-p", pubPath, "-s", secPath)
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	toolID := regexp.MustCompile(`[0-9A-F]{16}$`).FindString(lines[0])
	if toolID == "" {
		t.Fatalf("no key ID in %q", lines[0])
	}
	content := bytes.Repeat([]byte{1, 2, 3}, 100000)
	for _, tt := range []struct {
		name string
		args []string
		key  string
	}{
		{"prehashed, key line", nil, lines[1]},
		{"prehashed, whole file", nil, string(pub)},
		{"legacy", []string{"-l"}, lines[1]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRelease(t, content)
			run(t, "minisign", append([]string{"-S", "-s", secPath, "-m", r.path(), "-t", "v2.0.0 from the tool"}, tt.args...)...)
			v := minisignVerifier(t, tt.key)
			got, err := r.verify(t, v)
			if err != nil {
				t.Fatal(err)
			}
			if got != (Verified{Method: Minisign, Key: toolID, Comment: "v2.0.0 from the tool"}) {
				t.Errorf("verified = %+v, want key %s and the tool's trusted comment", got, toolID)
			}
			r.tamper(t)
			_, err = r.verify(t, v)
			wantRejected(t, err, Minisign, toolID, "does not match the artifact")
			// The tool agrees that the tampered artifact is refused.
			if out, err := exec.Command("minisign", "-V", "-p", pubPath, "-m", r.path()).CombinedOutput(); err == nil {
				t.Errorf("minisign -V accepted the tampered artifact:\n%s", out)
			}
		})
	}
}

// TestMinisignSeveralKeys: a release signed by any of the listed keys
// passes; the key that signed is the one shown.
func TestMinisignSeveralKeys(t *testing.T) {
	content := []byte("release")
	a, b := newMinisignKey(t), newMinisignKey(t)
	r := newRelease(t, content)
	r.writeSig(t, MinisignSuffix, b.sign(t, content, "by b"))
	got, err := r.verify(t, minisignVerifier(t, a.pub.String(), b.pub.String()))
	if err != nil || got.Key != b.id() {
		t.Errorf("verified = %+v, %v; want key %s", got, err, b.id())
	}
}

// TestFetchError: a registry failure fetching a signature is returned as
// is, not as a refusal, so the agent retries instead of marking the version
// bad.
func TestFetchError(t *testing.T) {
	key := newMinisignKey(t)
	v := minisignVerifier(t, key.pub.String())
	boom := errors.New("registry: 503 Service Unavailable")
	_, err := v.VerifyFile(t.Context(), "a", bytes.NewReader([]byte("x")), 1, func(_ context.Context, _ string) ([]byte, error) {
		return nil, boom
	})
	if err != boom || errors.Is(err, ErrRejected) {
		t.Errorf("error = %v, want the fetch error as is", err)
	}
}
