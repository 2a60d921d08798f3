package releasestore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRepairCurrent(t *testing.T) {
	tests := []struct {
		name    string
		current func(t *testing.T, s *Store)
		want    string // release name current points at afterwards
		usable  func(Release) bool
		changed bool
	}{
		{name: "good link untouched", current: func(t *testing.T, s *Store) {
			os.Symlink("releases/v1.0.0-20260101T000000Z", filepath.Join(s.AppDir, "current"))
		}, want: "v1.0.0-20260101T000000Z"},
		{name: "missing: the wanted release", current: func(*testing.T, *Store) {}, want: "v1.0.0-20260101T000000Z", changed: true},
		{name: "dangling", current: func(t *testing.T, s *Store) {
			os.Symlink("releases/gone", filepath.Join(s.AppDir, "current"))
		}, want: "v1.0.0-20260101T000000Z", changed: true},
		{name: "a directory, no wanted release: the newest usable", current: func(t *testing.T, s *Store) {
			os.MkdirAll(filepath.Join(s.AppDir, "current", "sub"), 0o755)
		}, want: "v1.0.0-20260101T000000Z", changed: true, usable: func(r Release) bool { return r.Version != "v1.1.0" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t)
			for _, r := range []string{"v1.0.0-20260101T000000Z", "v1.1.0-20260102T000000Z"} {
				if err := os.MkdirAll(filepath.Join(s.AppDir, "releases", r), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tt.current(t, s)
			want := filepath.Join(s.AppDir, "releases", "v1.0.0-20260101T000000Z")
			if tt.usable != nil {
				want = ""
			}
			got, changed, err := s.RepairCurrent(want, tt.usable)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(got) != tt.want || changed != tt.changed {
				t.Fatalf("RepairCurrent = %s, %v; want %s, %v", got, changed, tt.want, tt.changed)
			}
			mustCurrent(t, s, filepath.Join(s.AppDir, "releases", tt.want))
		})
	}
}

func TestClearStagingAndVersionOf(t *testing.T) {
	s, _ := newTestStore(t)
	for _, p := range []string{"tmp/stage-1/a/b", "tmp/removing-2/x"} {
		os.MkdirAll(filepath.Join(s.AppDir, p), 0o755)
	}
	os.WriteFile(filepath.Join(s.AppDir, "tmp", "download-3"), []byte("partial"), 0o600)
	if err := s.ClearStaging(); err != nil {
		t.Fatal(err)
	}
	mustEmptyDir(t, filepath.Join(s.AppDir, "tmp"))
	for name, want := range map[string]string{
		"v1.2.3-20260101T000000Z": "v1.2.3", "v1.2.3-rc.1-20260101T000000Z-2": "v1.2.3-rc.1", "handmade": "handmade",
	} {
		if got := VersionOf(name); got != want {
			t.Errorf("VersionOf(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestDeepArchiveCostsLittle: a 4 KB archive of 200 files 1,000 levels deep
// is refused at its first entry, and one within the depth limit extracts in
// time linear in its entries.
func TestDeepArchiveCostsLittle(t *testing.T) {
	var ents []ent
	deep := strings.Repeat("d/", 1000)
	for i := range 200 {
		ents = append(ents, ent{name: deep + itoa(i), body: "x"})
	}
	data := gzipOf(t, tarOf(t, ents...))
	s, _ := newTestStore(t)
	start := time.Now()
	_, err := s.Prepare(t.Context(), "v1.0.0", "deep.tar.gz", int64(len(data)), "", fromBytes(data))
	if !errors.Is(err, ErrBadArtifact) || !strings.Contains(err.Error(), "deeper than 256 levels") {
		t.Fatalf("err = %v, want a bad artifact deeper than the limit", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("refusing took %s", took)
	}

	// 250 levels, a file at each: allowed, and quick.
	ents = ents[:0]
	p := ""
	for i := range 250 {
		p += "d/"
		ents = append(ents, ent{name: p + "f" + itoa(i), body: "x"})
	}
	data = gzipOf(t, tarOf(t, ents...))
	start = time.Now()
	if _, err := s.Prepare(t.Context(), "v1.0.1", "deep.tar.gz", int64(len(data)), "", fromBytes(data)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("250 levels took %s", took)
	}
}
