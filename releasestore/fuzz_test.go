package releasestore

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzExtract prepares data as artifact and checks the invariants of any
// archive: no panic, nothing written outside the app directory, and a
// release whose every symlink resolves inside it.
func fuzzExtract(t *testing.T, artifact string, data []byte) {
	root := t.TempDir()
	s := NewStore(filepath.Join(root, "app"), 1, nil)
	s.MaxBytes, s.MaxEntries = 1<<20, 200
	s.Probe = fakeSpace(Space{AvailBytes: 1 << 30, TotalBytes: 1 << 31, AvailInodes: 1 << 20, TotalInodes: 1 << 21, BlockSize: 4096})
	p, err := s.Prepare(t.Context(), "v1.0.0", artifact, int64(len(data)), "", fromBytes(data))
	ents, rerr := os.ReadDir(root)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(ents) != 1 || ents[0].Name() != "app" {
		t.Fatalf("written beside the app directory: %v", ents)
	}
	if err != nil {
		mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
		return
	}
	real, _ := filepath.EvalSymlinks(p.Dir)
	filepath.WalkDir(p.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		to, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil // dangling: harmless
		}
		if to != real && !strings.HasPrefix(to, real+string(filepath.Separator)) {
			t.Fatalf("symlink %s resolves outside the release: %s", path, to)
		}
		return nil
	})
}

func FuzzExtractTar(f *testing.F) {
	f.Add(sampleTar(f))
	f.Add(tarOf(f, ent{name: "s", typ: tar.TypeSymlink, link: "."}, ent{name: "t", typ: tar.TypeSymlink, link: "s/.."}))
	f.Add(tarOf(f, ent{name: "d/../../x", body: "x"}))
	f.Add(tarOf(f, ent{name: "l", typ: tar.TypeSymlink, link: "sub"}, ent{name: "l/f", body: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzExtract(t, "a.tar", data) })
}

func FuzzExtractZip(f *testing.F) {
	f.Add(zipOf(f, ent{name: "a/b.txt", mode: 0o644, body: "b"}, ent{name: "l", mode: fs.ModeSymlink | 0o777, body: "a"}))
	f.Add(zipOf(f, ent{name: "../evil", mode: 0o644, body: "x"}))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzExtract(t, "a.zip", data) })
}
