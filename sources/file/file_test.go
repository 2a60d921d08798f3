package file

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/folders/folderstest"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

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
				write(t, path, string(content))
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
	write(t, filepath.Join(root, "v1.2.3", "app_linux_amd64.tar.gz"), "a")
	write(t, filepath.Join(root, "v1.2.4", "app_linux_amd64.tar.gz.part"), "half")
	write(t, filepath.Join(root, "v1.2.4", "app_linux_arm64.tar.gz.tmp"), "half")
	write(t, filepath.Join(root, "v1.2.4", ".app_linux_arm64.tar.gz"), "hidden")
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
