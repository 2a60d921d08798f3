package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testkit"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders/folderstest"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// registry is an empty folder, for the folder registry contract.
func registry(t *testing.T) folderstest.Registry {
	root := t.TempDir()
	return folderstest.Registry{
		Put: func(t *testing.T, key string, content []byte, at time.Time) {
			path := filepath.Join(root, filepath.FromSlash(key))
			if strings.HasSuffix(key, "/") {
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
			} else {
				testkit.WriteFile(t, path, string(content))
			}
			// The file and the folders it is in carry the object's time.
			for p := filepath.Clean(path); p != root; p = filepath.Dir(p) {
				if err := os.Chtimes(p, at, at); err != nil {
					t.Fatal(err)
				}
			}
		},
		Delete: func(t *testing.T, key string) {
			if err := os.Remove(filepath.Join(root, filepath.FromSlash(key))); err != nil {
				t.Fatal(err)
			}
		},
		Get: func(t *testing.T, key string) []byte {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key)))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Source: func(t *testing.T, prefix string) folderstest.Source {
			f, err := New(filepath.Join(root, prefix), sources.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
		OpensEveryFolder: true,
	}
}

func TestContract(t *testing.T) { folderstest.Run(t, registry) }

// TestHiddenFiles: dot files and files still being written are skipped.
func TestHiddenFiles(t *testing.T) {
	root := t.TempDir()
	testkit.WriteFile(t, filepath.Join(root, "v1.2.3", "app_linux_amd64.tar.gz"), "a")
	testkit.WriteFile(t, filepath.Join(root, "v1.2.4", "app_linux_amd64.tar.gz.part"), "half")
	testkit.WriteFile(t, filepath.Join(root, "v1.2.4", "app_linux_arm64.tar.gz.tmp"), "half")
	testkit.WriteFile(t, filepath.Join(root, "v1.2.4", ".app_linux_arm64.tar.gz"), "hidden")
	if err := os.Mkdir(filepath.Join(root, ".staging"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := New(root, sources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rels, err := f.Releases(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"v1.2.3: app_linux_amd64.tar.gz", "v1.2.4:"}
	if got := folderstest.Summary(rels); !slices.Equal(got, want) {
		t.Errorf("releases = %q, want %q", got, want)
	}
}

func TestOpenRefusesEscapes(t *testing.T) {
	root := t.TempDir()
	f, _ := New(root, sources.Options{})
	for _, ref := range []string{"../x", "/etc/passwd", "v1/../../x"} {
		if _, err := f.Open(t.Context(), version.Release{}, version.Asset{Ref: ref}); err == nil {
			t.Errorf("Open(%q) succeeded", ref)
		}
	}
}

func TestMissingFolder(t *testing.T) {
	f, _ := New(filepath.Join(t.TempDir(), "nope"), sources.Options{})
	_, err := f.Releases(t.Context())
	if !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestNewRefusesRelative(t *testing.T) {
	if _, err := New("relative/path", sources.Options{}); err == nil {
		t.Fatal("relative path accepted")
	}
}

// TestOpenWaitsForAFileBeingWritten: a file younger than MinAge is read once
// it is that old and unchanged; one that changed since it was listed, or
// during the wait, is refused as still being written (never as a bad file).
func TestOpenWaitsForAFileBeingWritten(t *testing.T) {
	tests := []struct {
		name       string
		age        time.Duration
		grow       bool // the file grows after the listing
		growInWait bool // the file grows during the wait
		wantWait   bool
		wantErr    bool
	}{
		{name: "old file", age: time.Hour},
		{name: "young file waited for", age: 100 * time.Millisecond, wantWait: true},
		{name: "changed since listed", age: time.Hour, grow: true, wantErr: true},
		{name: "changed while waiting", age: 100 * time.Millisecond, growInWait: true, wantWait: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "v1.0.0", "app.tar.gz")
			testkit.WriteFile(t, path, "part one")
			mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			if err := os.Chtimes(path, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			f, err := New(root, sources.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f.Now = func() time.Time { return mtime.Add(tt.age) }
			waited := time.Duration(0)
			f.sleep = func(_ context.Context, d time.Duration) error {
				waited = d
				if tt.growInWait {
					testkit.WriteFile(t, path, "part one, part two")
				}
				return nil
			}
			rels, err := f.Releases(t.Context())
			if err != nil || len(rels) != 1 || len(rels[0].Assets) != 1 {
				t.Fatalf("Releases = %+v, %v", rels, err)
			}
			if tt.grow {
				testkit.WriteFile(t, path, "part one, part two")
			}
			rc, err := f.Open(t.Context(), rels[0], rels[0].Assets[0])
			if rc != nil {
				rc.Close()
			}
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrChanging)) {
				t.Fatalf("Open err = %v, want error %v wrapping ErrChanging", err, tt.wantErr)
			}
			if got := waited > 0; got != tt.wantWait {
				t.Fatalf("waited %s, want a wait: %v", waited, tt.wantWait)
			}
			if tt.wantWait && waited != DefaultMinAge-tt.age {
				t.Fatalf("waited %s, want %s", waited, DefaultMinAge-tt.age)
			}
		})
	}
}
