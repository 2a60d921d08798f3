package releasestore

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func itoa(i int) string { return strconv.Itoa(i) }

// sampleTar is a tree with what real release archives hold, and the traps that
// must be defused: setuid, setgid and sticky bits, a write-only file, a pax
// global header, "./" prefixes, a directory without its own entry.
func sampleTar(t testing.TB) []byte {
	return tarOf(t,
		ent{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "./bin/", typ: tar.TypeDir, mode: 0o750},
		ent{name: "./bin/app", mode: 0o755 | fs.ModeSetuid, body: "#!/bin/sh\necho app\n"},
		ent{name: "./bin/tool", mode: 0o711 | fs.ModeSetgid, body: "tool"},
		ent{name: "./conf/app.conf", mode: 0o600, body: "port = 8000\n"},
		ent{name: "./conf/writeonly", mode: 0o200, body: "secret"},
		ent{name: "./run", typ: tar.TypeSymlink, link: "bin/app"},
		ent{name: "./bin/app-hard", typ: tar.TypeLink, link: "./bin/app"},
		ent{name: "./share/sticky/", typ: tar.TypeDir, mode: 0o777 | fs.ModeSticky},
		ent{name: "./share/../share/notes.txt", mode: 0o644, body: "notes"},
	)
}

// sampleTree is what sampleTar extracts to.
var sampleTree = map[string]node{
	"bin":             {kind: "dir", mode: 0o750},
	"bin/app":         {kind: "file", mode: 0o755, body: "#!/bin/sh\necho app\n"},
	"bin/tool":        {kind: "file", mode: 0o711, body: "tool"},
	"bin/app-hard":    {kind: "file", mode: 0o755, body: "#!/bin/sh\necho app\n"},
	"conf":            {kind: "dir", mode: 0o755},
	"conf/app.conf":   {kind: "file", mode: 0o600, body: "port = 8000\n"},
	"conf/writeonly":  {kind: "file", mode: 0o600, body: "secret"},
	"run":             {kind: "link", body: "bin/app"},
	"share":           {kind: "dir", mode: 0o755},
	"share/sticky":    {kind: "dir", mode: 0o755}, // 0777 masked by DefaultModeMask
	"share/notes.txt": {kind: "file", mode: 0o644, body: "notes"},
}

func TestPrepareFormats(t *testing.T) {
	bz2Fixture, err := os.ReadFile(filepath.Join("testdata", "hello.tar.bz2"))
	if err != nil {
		t.Fatal(err)
	}
	helloTree := map[string]node{
		"hello":            {kind: "dir", mode: 0o755},
		"hello/README.txt": {kind: "file", mode: 0o644, body: "hello from bzip2\n"},
		"hello/app":        {kind: "file", mode: 0o755, body: "#!/bin/sh\necho hello\n"},
	}
	gzipMagic := gzipOf(t, []byte("not an archive, just bytes"))

	tests := []struct {
		name     string
		artifact string
		data     func(t *testing.T) []byte
		want     map[string]node
	}{
		{name: "tar.gz", artifact: "app_linux_amd64.tar.gz", data: func(t *testing.T) []byte { return gzipOf(t, sampleTar(t)) }, want: sampleTree},
		{name: "tgz upper case", artifact: "APP_LINUX_AMD64.TGZ", data: func(t *testing.T) []byte { return gzipOf(t, sampleTar(t)) }, want: sampleTree},
		{name: "tar", artifact: "app.tar", data: func(t *testing.T) []byte { return sampleTar(t) }, want: sampleTree},
		{name: "tar.xz", artifact: "app.tar.xz", data: func(t *testing.T) []byte { return xzOf(t, sampleTar(t)) }, want: sampleTree},
		{name: "txz", artifact: "app.txz", data: func(t *testing.T) []byte { return xzOf(t, sampleTar(t)) }, want: sampleTree},
		{name: "tar.bz2 fixture", artifact: "hello.tar.bz2", data: func(*testing.T) []byte { return bz2Fixture }, want: helloTree},
		{name: "tbz2 fixture", artifact: "hello.tbz2", data: func(*testing.T) []byte { return bz2Fixture }, want: helloTree},
		{
			name: "tar.bz2 made by the bzip2 binary", artifact: "app.tar.bz2", want: sampleTree,
			data: func(t *testing.T) []byte {
				bin, err := exec.LookPath("bzip2")
				if err != nil {
					t.Skip("no bzip2 binary; the fixture cases cover bzip2")
				}
				cmd := exec.CommandContext(t.Context(), bin, "-c")
				cmd.Stdin = bytes.NewReader(sampleTar(t))
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("bzip2: %v", err)
				}
				return out
			},
		},
		{
			name: "zip", artifact: "app_linux_amd64.zip",
			data: func(t *testing.T) []byte {
				return zipOf(t,
					ent{name: "bin/", mode: fs.ModeDir | 0o750},
					ent{name: "bin/app", mode: 0o755 | fs.ModeSetuid, body: "zip app"},
					ent{name: "README", mode: 0o644, body: "readme"},
					ent{name: "docs/guide.txt", mode: 0o640, body: "guide"},
					ent{name: "ro", mode: 0o444, body: "read only"},
					ent{name: "run", mode: fs.ModeSymlink | 0o777, body: "bin/app"},
				)
			},
			want: map[string]node{
				"bin":            {kind: "dir", mode: 0o750},
				"bin/app":        {kind: "file", mode: 0o755, body: "zip app"},
				"README":         {kind: "file", mode: 0o644, body: "readme"},
				"docs":           {kind: "dir", mode: 0o755},
				"docs/guide.txt": {kind: "file", mode: 0o640, body: "guide"},
				"ro":             {kind: "file", mode: 0o444, body: "read only"},
				"run":            {kind: "link", body: "bin/app"},
			},
		},
		{
			name: "bare executable", artifact: "myapp_linux_amd64",
			data: func(*testing.T) []byte { return []byte("\x7fELF pretend") },
			want: map[string]node{"myapp_linux_amd64": {kind: "file", mode: 0o755, body: "\x7fELF pretend"}},
		},
		{
			name: "bare executable starting with gzip magic", artifact: "myapp",
			data: func(*testing.T) []byte { return gzipMagic },
			want: map[string]node{"myapp": {kind: "file", mode: 0o755, body: string(gzipMagic)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			s, _ := newTestStore(t)
			p, err := s.Prepare(t.Context(), "v1.2.3", tt.artifact, int64(len(data)), sum(data), fromBytes(data))
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if want := filepath.Join(s.AppDir, "releases", "v1.2.3-20261126T203015Z"); p.Dir != want {
				t.Errorf("Dir = %s, want %s", p.Dir, want)
			}
			if p.SHA256 != sum(data) || p.Size != int64(len(data)) {
				t.Errorf("Prepared = %+v, want sha256 %s and size %d", p, sum(data), len(data))
			}
			got := snapshot(t, p.Dir)
			for path, w := range tt.want {
				if g, ok := got[path]; !ok {
					t.Errorf("%s missing", path)
				} else if g != w {
					t.Errorf("%s = %+v, want %+v", path, g, w)
				}
			}
			for path := range got {
				if _, ok := tt.want[path]; !ok {
					t.Errorf("unexpected %s", path)
				}
			}
			fi, err := os.Stat(p.Dir)
			if err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("release dir mode = %v, %v; want 0755", fi.Mode(), err)
			}
			mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
			if cur, err := s.Current(); cur != "" || err != nil {
				t.Errorf("Current = %q, %v; Prepare must not switch", cur, err)
			}
		})
	}
}

// TestPrepareHardLinkIsALink checks that a tar hard link shares the file rather
// than copying it.
func TestPrepareHardLinkIsALink(t *testing.T) {
	s, _ := newTestStore(t)
	data := sampleTar(t)
	p, err := s.Prepare(t.Context(), "v1", "app.tar", -1, "", fromBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	a, err := os.Stat(filepath.Join(p.Dir, "bin", "app"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(filepath.Join(p.Dir, "bin", "app-hard"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(a, b) {
		t.Error("bin/app-hard is not the same file as bin/app")
	}
}

// failingReader returns its data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func (r *failingReader) Close() error { return nil }

func TestPrepareRefuses(t *testing.T) {
	evilAbs := filepath.Join(os.TempDir(), "dewy-release-evil-"+rand.Text()[:10])
	good := gzipOf(t, tarOf(t, ent{name: "app", mode: 0o755, body: "good"}))
	tgz := func(ents ...ent) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return gzipOf(t, tarOf(t, ents...)) }
	}
	zipped := func(ents ...ent) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return zipOf(t, ents...) }
	}
	raw := func(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }

	tests := []struct {
		name     string
		artifact string
		data     func(t *testing.T) []byte
		size     int64 // 0: len(data)
		sha      string
		open     func(data []byte) func(context.Context) (io.ReadCloser, error)
		tweak    func(s *Store)
		wantErr  string
		wantBad  bool
	}{
		{name: "tar zip-slip", artifact: "a.tar.gz", data: tgz(ent{name: "../evil", body: "x"}), wantErr: `entry "../evil": path escapes the release directory`, wantBad: true},
		{name: "tar zip-slip nested", artifact: "a.tar.gz", data: tgz(ent{name: "a/../../evil", body: "x"}), wantErr: "escapes", wantBad: true},
		{name: "zip zip-slip", artifact: "a.zip", data: zipped(ent{name: "../evil", mode: 0o644, body: "x"}), wantErr: "escapes", wantBad: true},
		{name: "tar absolute path", artifact: "a.tar.gz", data: tgz(ent{name: evilAbs, body: "x"}), wantErr: "absolute path", wantBad: true},
		{name: "zip absolute path", artifact: "a.zip", data: zipped(ent{name: evilAbs, mode: 0o644, body: "x"}), wantErr: "absolute path", wantBad: true},
		{name: "symlink out", artifact: "a.tar.gz", data: tgz(ent{name: "link", typ: tar.TypeSymlink, link: "../../etc"}), wantErr: `symlink "link" -> "../../etc": points outside`, wantBad: true},
		{name: "symlink out from a subdirectory", artifact: "a.tar.gz", data: tgz(ent{name: "d/link", typ: tar.TypeSymlink, link: "../.."}), wantErr: "points outside", wantBad: true},
		{name: "absolute symlink", artifact: "a.tar.gz", data: tgz(ent{name: "link", typ: tar.TypeSymlink, link: "/etc"}), wantErr: "absolute targets are refused", wantBad: true},
		{name: "zip symlink out", artifact: "a.zip", data: zipped(ent{name: "link", mode: fs.ModeSymlink | 0o777, body: "../../etc"}), wantErr: "points outside", wantBad: true},
		{
			name: "write through a symlink", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "sub/", typ: tar.TypeDir, mode: 0o755},
				ent{name: "link", typ: tar.TypeSymlink, link: "sub"},
				ent{name: "link/evil", body: "x"},
			),
			wantErr: `entry "link/evil": writes through the symlink "link"`, wantBad: true,
		},
		{
			name: "write through a symlink to the parent", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "d/link", typ: tar.TypeSymlink, link: ".."},
				ent{name: "d/link/evil", body: "x"},
			),
			wantErr: "writes through the symlink", wantBad: true,
		},
		{
			name: "zip write through a symlink", artifact: "a.zip",
			data: zipped(
				ent{name: "link", mode: fs.ModeSymlink | 0o777, body: "."},
				ent{name: "link/evil", mode: 0o644, body: "x"},
			),
			wantErr: "writes through the symlink", wantBad: true,
		},
		{
			name: "symlink chain out", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "s", typ: tar.TypeSymlink, link: "."},
				ent{name: "t", typ: tar.TypeSymlink, link: "s/.."},
			),
			wantErr: `symlink "t" -> "s/..": points outside`, wantBad: true,
		},
		{
			name: "symlink chain out through a directory", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "t", typ: tar.TypeSymlink, link: "d/s/../x"},
				ent{name: "d/s", typ: tar.TypeSymlink, link: ".."},
			),
			wantErr: "points outside", wantBad: true,
		},
		{
			name: "symlink loop", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "a", typ: tar.TypeSymlink, link: "b"},
				ent{name: "b", typ: tar.TypeSymlink, link: "a"},
			),
			wantErr: "too many levels of symlinks", wantBad: true,
		},
		{name: "hard link out", artifact: "a.tar.gz", data: tgz(ent{name: "hl", typ: tar.TypeLink, link: "../../etc/passwd"}), wantErr: `hard link "hl" -> "../../etc/passwd": points outside`, wantBad: true},
		{name: "hard link absolute", artifact: "a.tar.gz", data: tgz(ent{name: "hl", typ: tar.TypeLink, link: "/etc/passwd"}), wantErr: "must be a relative path", wantBad: true},
		{name: "hard link to nothing extracted", artifact: "a.tar.gz", data: tgz(ent{name: "hl", typ: tar.TypeLink, link: "missing"}), wantErr: "not a file extracted earlier", wantBad: true},
		{
			name: "hard link through a symlink", artifact: "a.tar.gz",
			data: tgz(
				ent{name: "sub/f", body: "f"},
				ent{name: "l", typ: tar.TypeSymlink, link: "sub"},
				ent{name: "hl", typ: tar.TypeLink, link: "l/f"},
			),
			wantErr: `target is not a file extracted earlier`, wantBad: true,
		},
		{name: "too deep", artifact: "a.tar.gz", data: tgz(ent{name: strings.Repeat("d/", DefaultMaxDepth) + "f", body: "x"}), wantErr: "deeper than 256 levels", wantBad: true},
		{name: "name too long", artifact: "a.tar.gz", data: tgz(ent{name: strings.Repeat("n", 300), body: "x"}), wantErr: "longer than 255 bytes", wantBad: true},
		{
			name: "file over a symlink of the same name", artifact: "a.tar.gz",
			data:    tgz(ent{name: "x", typ: tar.TypeSymlink, link: "y"}, ent{name: "x", body: "x"}),
			wantErr: "conflicts with the symlink", wantBad: true,
		},
		{name: "fifo", artifact: "a.tar.gz", data: tgz(ent{name: "fifo", typ: tar.TypeFifo}), wantErr: "device or fifo", wantBad: true},
		{name: "character device", artifact: "a.tar.gz", data: tgz(ent{name: "null", typ: tar.TypeChar}), wantErr: "device or fifo", wantBad: true},
		{name: "zip named pipe", artifact: "a.zip", data: zipped(ent{name: "fifo", mode: fs.ModeNamedPipe | 0o644}), wantErr: "special files", wantBad: true},
		{
			name: "file over a directory", artifact: "a.tar.gz",
			data:    tgz(ent{name: "d/", typ: tar.TypeDir, mode: 0o755}, ent{name: "d", body: "x"}),
			wantErr: "a directory was already extracted there", wantBad: true,
		},
		{name: "empty archive", artifact: "a.tar.gz", data: tgz(), wantErr: "the archive is empty", wantBad: true},
		{name: "checksum mismatch", artifact: "a.tar.gz", data: raw(good), sha: sum([]byte("other")), wantErr: "checksum mismatch for a.tar.gz: want " + sum([]byte("other")) + ", got " + sum(good), wantBad: true},
		{name: "checksum not hex", artifact: "a.tar.gz", data: raw(good), sha: "abc", wantErr: "is not a SHA-256 in hex"},
		{name: "corrupted gzip", artifact: "a.tar.gz", data: raw([]byte("this is not gzip at all")), wantErr: "read gzip", wantBad: true},
		{name: "corrupted xz", artifact: "a.tar.xz", data: raw([]byte("this is not xz at all")), wantErr: "read xz", wantBad: true},
		{name: "corrupted bzip2", artifact: "a.tar.bz2", data: raw([]byte("this is not bzip2 at all")), wantErr: "read tar", wantBad: true},
		{name: "corrupted zip", artifact: "a.zip", data: raw([]byte("this is not a zip at all")), wantErr: "read zip", wantBad: true},
		{name: "corrupted tar", artifact: "a.tar", data: raw(bytes.Repeat([]byte("x"), 1024)), wantErr: "read tar", wantBad: true},
		{
			name: "truncated gzip", artifact: "a.tar.gz",
			data: func(t *testing.T) []byte {
				b := gzipOf(t, tarOf(t, ent{name: "big", body: strings.Repeat("0123456789abcdef", 4096)}))
				return b[:len(b)/2]
			},
			// A file still being written looks like this: not bad, retried.
			wantErr: "unexpected EOF", wantBad: false,
		},
		{
			name: "corrupted gzip trailer", artifact: "a.tar.gz",
			data: func(t *testing.T) []byte {
				b := bytes.Clone(good)
				b[len(b)-5] ^= 0xff // the CRC-32 after the deflate stream
				return b
			},
			wantErr: "gzip: invalid checksum", wantBad: true,
		},
		{name: "short download", artifact: "a.tar.gz", data: raw(good), size: int64(len(good)) + 100, wantErr: "short download: got " + itoa(len(good)) + " of " + itoa(len(good)+100) + " bytes"},
		{name: "long download", artifact: "a.tar.gz", data: raw(good), size: int64(len(good)) - 1, wantErr: "longer than the announced"},
		{
			name: "reader fails with unexpected EOF", artifact: "a.tar.gz", data: raw(good), size: -1,
			open: func(data []byte) func(context.Context) (io.ReadCloser, error) {
				return func(context.Context) (io.ReadCloser, error) {
					return &failingReader{data: data[:10], err: io.ErrUnexpectedEOF}, nil
				}
			},
			wantErr: "download a.tar.gz: after 10 bytes: unexpected EOF",
		},
		{
			name: "open fails", artifact: "a.tar.gz", data: raw(good),
			open: func([]byte) func(context.Context) (io.ReadCloser, error) {
				return func(context.Context) (io.ReadCloser, error) { return nil, errors.New("403 forbidden") }
			},
			wantErr: "download a.tar.gz: 403 forbidden",
		},
		{
			name: "too many entries", artifact: "a.tar.gz",
			data:    tgz(ent{name: "1"}, ent{name: "2"}, ent{name: "3"}, ent{name: "4"}),
			tweak:   func(s *Store) { s.MaxEntries = 3 },
			wantErr: "more than 3 entries", wantBad: true,
		},
		{
			name: "tar bomb", artifact: "a.tar.gz",
			data:    tgz(ent{name: "zeros", body: strings.Repeat("\x00", 1<<20)}),
			tweak:   func(s *Store) { s.MaxBytes = 64 << 10 },
			wantErr: "extracted contents larger than 65536 bytes", wantBad: true,
		},
		{
			name: "zip bomb", artifact: "a.zip",
			data:    zipped(ent{name: "zeros", mode: 0o644, body: strings.Repeat("\x00", 1<<20)}),
			tweak:   func(s *Store) { s.MaxBytes = 64 << 10 },
			wantErr: "extracted contents larger than 65536 bytes", wantBad: true,
		},
		{
			name: "download over the limit", artifact: "app", size: -1,
			data:    raw(bytes.Repeat([]byte("x"), 2000)),
			tweak:   func(s *Store) { s.MaxBytes = 1000 },
			wantErr: "larger than the limit of 1000 bytes", wantBad: true,
		},
		{
			name: "announced size over the limit", artifact: "app",
			data:    raw(bytes.Repeat([]byte("x"), 2000)),
			tweak:   func(s *Store) { s.MaxBytes = 1000 },
			wantErr: "artifact of 2000 bytes is larger than the limit of 1000 bytes", wantBad: true,
		},
		{name: "artifact name with a slash", artifact: "../app", data: raw(good), wantErr: "is not a plain file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.data(t)
			s, root := newTestStore(t)
			// A deployed release that must survive the refusal untouched.
			prev, err := s.Prepare(t.Context(), "v1.0.0", "app.tar.gz", int64(len(good)), "", fromBytes(good))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Switch(prev.Dir); err != nil {
				t.Fatal(err)
			}
			if tt.tweak != nil {
				tt.tweak(s)
			}
			before := snapshot(t, root)
			s.Now = func() time.Time { return t0.Add(time.Hour) }

			size := tt.size
			if size == 0 {
				size = int64(len(data))
			}
			open := fromBytes(data)
			if tt.open != nil {
				open = tt.open(data)
			}
			p, err := s.Prepare(t.Context(), "v2.0.0", tt.artifact, size, tt.sha, open)
			if err == nil {
				t.Fatalf("Prepare made %s, want an error containing %q", p.Dir, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrBadArtifact); got != tt.wantBad {
				t.Errorf("errors.Is(err, ErrBadArtifact) = %v, want %v (err: %v)", got, tt.wantBad, err)
			}
			if p != (Prepared{}) {
				t.Errorf("Prepared = %+v, want zero", p)
			}
			after := snapshot(t, root)
			for path, n := range after {
				if b, ok := before[path]; !ok || b != n {
					t.Errorf("after the refusal %s is %+v, was %+v (existed: %v)", path, n, b, ok)
				}
			}
			for path := range before {
				if _, ok := after[path]; !ok {
					t.Errorf("after the refusal %s is gone", path)
				}
			}
			mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
			if cur, err := s.Current(); cur != prev.Dir || err != nil {
				t.Errorf("Current = %q, %v; want %q", cur, err, prev.Dir)
			}
			if _, err := os.Lstat(evilAbs); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was written: %v", evilAbs, err)
				_ = os.Remove(evilAbs)
			}
		})
	}
}
