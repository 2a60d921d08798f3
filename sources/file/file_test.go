package file

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/sources"
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

func TestReleases(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "v1.2.3", "app_linux_amd64.tar.gz"), "a")
	write(t, filepath.Join(root, "v1.2.3", "SHA256SUMS"), "s")
	write(t, filepath.Join(root, "v1.2.4", "app_linux_amd64.tar.gz.part"), "half")
	write(t, filepath.Join(root, "v1.2.4", ".app_linux_arm64.tar.gz"), "hidden")
	write(t, filepath.Join(root, "README"), "not a release")
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
	var tags []string
	for _, r := range rels {
		tags = append(tags, r.Tag)
	}
	slices.Sort(tags)
	if !slices.Equal(tags, []string{"v1.2.3", "v1.2.4"}) {
		t.Fatalf("tags = %v", tags)
	}
	for _, r := range rels {
		var names []string
		for _, a := range r.Assets {
			names = append(names, a.Name)
		}
		slices.Sort(names)
		want := []string{}
		if r.Tag == "v1.2.3" {
			want = []string{"SHA256SUMS", "app_linux_amd64.tar.gz"}
		}
		if !slices.Equal(names, want) && !(len(names) == 0 && len(want) == 0) {
			t.Errorf("%s assets = %v, want %v", r.Tag, names, want)
		}
		if r.Created.IsZero() {
			t.Errorf("%s has no time", r.Tag)
		}
	}

	// The listed asset opens with its content.
	var rel version.Release
	for _, r := range rels {
		if r.Tag == "v1.2.3" {
			rel = r
		}
	}
	i := slices.IndexFunc(rel.Assets, func(a version.Asset) bool { return a.Name == "app_linux_amd64.tar.gz" })
	rc, err := f.Open(t.Context(), rel, rel.Assets[i])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "a" || rel.Assets[i].Size != 1 {
		t.Fatalf("content %q size %d", b, rel.Assets[i].Size)
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

func TestReport(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "v1.0.0", "site.tar.gz"), "a")
	f, _ := New(root, sources.Options{})
	rep := sources.Report{App: "site", Host: "web-1", Release: version.Release{Tag: "v1.0.0"},
		Artifact: version.Asset{Name: "site.tar.gz"}, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := f.Report(t.Context(), rep); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "v1.0.0", ".dewy-reports", "*.txt"))
	if len(files) != 1 {
		t.Fatalf("report files = %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "app: site") || !strings.Contains(string(b), "result: success") {
		t.Fatalf("report:\n%s", b)
	}
	// The report is not an asset of the release.
	rels, _ := f.Releases(t.Context())
	for _, r := range rels {
		if len(r.Assets) != 1 {
			t.Fatalf("%s assets = %+v", r.Tag, r.Assets)
		}
	}
	if err := f.Report(t.Context(), sources.Report{Release: version.Release{Tag: "../x"}}); err == nil {
		t.Fatal("a report outside the registry was written")
	}
}
