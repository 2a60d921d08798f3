package assets

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/dewy-agent/dewy-agent/releasestore"
	"github.com/dewy-agent/dewy-agent/runners"
)

// TestDeployAndLink deploys two releases through a real release store and checks
// that current and the extra link follow, and that a link that cannot be switched
// switches current back.
func TestDeployAndLink(t *testing.T) {
	dir := t.TempDir()
	store := releasestore.NewStore(filepath.Join(dir, "app"), 3, slog.New(slog.DiscardHandler))
	link := filepath.Join(dir, "www")
	a := New(Config{Link: link}, runners.Options{Logger: slog.New(slog.DiscardHandler)})

	deploy := func(v string) (runners.Deployment, error) {
		os.MkdirAll(filepath.Join(dir, "app", "releases", v), 0o755)
		rd := filepath.Join(dir, "app", "releases", v)
		os.WriteFile(filepath.Join(rd, "index.html"), []byte(v), 0o644)
		act, rb, err := store.Activation(rd)
		if err != nil {
			t.Fatal(err)
		}
		d := runners.Deployment{Version: v, Dir: rd, Activate: act, Rollback: rb}
		return d, a.Deploy(t.Context(), d)
	}
	read := func(p string) string {
		b, _ := os.ReadFile(filepath.Join(p, "index.html"))
		return string(b)
	}

	if _, err := deploy("v1"); err != nil {
		t.Fatal(err)
	}
	if read(link) != "v1" || read(filepath.Join(dir, "app", "current")) != "v1" {
		t.Fatalf("after v1: link %q current %q", read(link), read(filepath.Join(dir, "app", "current")))
	}
	if _, err := deploy("v2"); err != nil {
		t.Fatal(err)
	}
	if read(link) != "v2" {
		t.Fatalf("link serves %q after v2", read(link))
	}

	// The link path becomes a real directory (someone copied files there): the
	// deploy fails, current goes back to v2, and the user's files stay.
	os.Remove(link)
	os.MkdirAll(link, 0o755)
	os.WriteFile(filepath.Join(link, "index.html"), []byte("user data"), 0o644)
	if _, err := deploy("v3"); err == nil {
		t.Fatal("deploy over a real directory succeeded")
	}
	if got := read(filepath.Join(dir, "app", "current")); got != "v2" {
		t.Fatalf("current serves %q after the failed deploy, want v2", got)
	}
	if read(link) != "user data" {
		t.Fatal("the user's directory was touched")
	}

	// Resume re-creates a missing link; Stop leaves files in place.
	os.RemoveAll(link)
	if err := a.Resume(t.Context(), runners.Deployment{Version: "v2", Dir: filepath.Join(dir, "app", "releases", "v2")}); err != nil {
		t.Fatal(err)
	}
	if read(link) != "v2" {
		t.Fatalf("resume: link serves %q", read(link))
	}
	if err := a.Stop(t.Context(), runners.AppRemoved); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(link); errors.Is(err, os.ErrNotExist) {
		t.Fatal("stop removed the link")
	}
}
