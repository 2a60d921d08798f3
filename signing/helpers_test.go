package signing

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// release is an artifact written to a folder, as a file:// registry holds
// one, with its signatures beside it.
type release struct {
	dir, name string
}

func newRelease(t testing.TB, content []byte) release {
	t.Helper()
	r := release{dir: t.TempDir(), name: "app_linux_amd64.tar.gz"}
	if err := os.WriteFile(r.path(), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r release) path() string { return filepath.Join(r.dir, r.name) }

func (r release) writeSig(t testing.TB, suffix string, sig []byte) {
	t.Helper()
	if err := os.WriteFile(r.path()+suffix, sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tamper changes one byte of the artifact in place.
func (r release) tamper(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(r.path(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
}

// fetch reads the signature files from the release's folder, as the agent's
// file:// source does: a file that is not there is ErrMissing.
func (r release) fetch(_ context.Context, suffix string) ([]byte, error) {
	b, err := os.ReadFile(r.path() + suffix)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s%s: %w", r.name, suffix, ErrMissing)
	}
	return b, err
}

// verify runs v.VerifyFile over the release's artifact.
func (r release) verify(t testing.TB, v *Verifier) (Verified, error) {
	t.Helper()
	f, err := os.Open(r.path())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return v.VerifyFile(context.Background(), r.name, f, fi.Size(), r.fetch)
}

// wantRejected checks that err is a *Rejected whose only reason is method's
// with key and a Why containing why.
func wantRejected(t testing.TB, err error, method Method, key, why string) {
	t.Helper()
	var rej *Rejected
	if !errors.As(err, &rej) || !errors.Is(err, ErrRejected) {
		t.Fatalf("error = %v, want a rejection", err)
	}
	if len(rej.Reasons) != 1 {
		t.Fatalf("reasons = %+v, want one", rej.Reasons)
	}
	r := rej.Reasons[0]
	if r.Method != method || r.Key != key || !strings.Contains(r.Why, why) {
		t.Errorf("reason = %+v, want method %s, key %q, why containing %q", r, method, key, why)
	}
}

// run runs a real tool, failing the test with its output when it fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeFile writes a file in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
