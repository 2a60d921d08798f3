package releasestore

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the clock of the test stores.
var t0 = time.Date(2026, 11, 26, 20, 30, 15, 0, time.UTC)

// newTestStore returns a Store on <tmp>/app with a fixed clock, and the test's
// temporary root (everything the test may touch is under it).
func newTestStore(t testing.TB) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s := NewStore(filepath.Join(root, "app"), 3, nil)
	s.Now = func() time.Time { return t0 }
	return s, root
}

// fromBytes opens b as an artifact.
func fromBytes(b []byte) func(ctx context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ent is one tar or zip entry to build.
type ent struct {
	name string
	typ  byte        // tar type flag; tar.TypeReg when zero
	mode fs.FileMode // zip: type bits and permissions; tar: permissions and setuid/setgid/sticky
	body string
	link string
}

// tarOf builds a tar archive.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := int64(e.mode.Perm())
		if e.mode&fs.ModeSetuid != 0 {
			mode |= 0o4000
		}
		if e.mode&fs.ModeSetgid != 0 {
			mode |= 0o2000
		}
		if e.mode&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: t0, Format: tar.FormatPAX}
		if typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Typeflag: typ, Name: e.name, PAXRecords: map[string]string{"comment": "test"}, Format: tar.FormatPAX}
		}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// zipOf builds a zip archive; a symlink's body is its target.
func zipOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: t0}
		fh.SetMode(e.mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t testing.TB, b []byte) []byte {
	return compressed(t, b, func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil })
}

func xzOf(t testing.TB, b []byte) []byte {
	return compressed(t, b, func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) })
}

// compressed returns b written through the compressor newWriter makes.
func compressed(t testing.TB, b []byte, newWriter func(io.Writer) (io.WriteCloser, error)) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := newWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// node is what snapshot records of one path.
type node struct {
	kind string // "dir", "file", "link"
	mode fs.FileMode
	body string // file contents or link target
}

// snapshot records every path under root (root itself excluded), by path
// relative to root.
func snapshot(t testing.TB, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n := node{mode: fi.Mode().Perm()}
		switch {
		case d.IsDir():
			n.kind = "dir"
		case d.Type()&fs.ModeSymlink != 0:
			n.kind = "link"
			n.mode = 0
			n.body, err = os.Readlink(p)
		case d.Type().IsRegular():
			n.kind = "file"
			var b []byte
			b, err = os.ReadFile(p)
			n.body = string(b)
		default:
			n.kind = "special"
		}
		out[filepath.ToSlash(rel)] = n
		return err
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

// mustEmptyDir fails unless dir exists and holds nothing.
func mustEmptyDir(t testing.TB, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	for _, e := range es {
		t.Errorf("%s holds %s, want empty", dir, e.Name())
	}
}
