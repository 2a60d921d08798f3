package ghr_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
)

func TestSchemeDecode(t *testing.T) {
	sourcestest.Decode(t, ghr.Scheme(), []sourcestest.DecodeCase{
		{URL: "ghr://linyows/myapp", Want: ghr.Config{Owner: "linyows", Repo: "myapp"}},
		{URL: "ghr://linyows", WantErr: "Invalid ghr registry"},
		{URL: "ghr://owner:8080/repo", WantErr: "Invalid GitHub owner"},
		{URL: "ghr://owner/re%20po", WantErr: "Invalid GitHub repository"},
		{URL: "ghr://owner/..", WantErr: "Invalid GitHub repository"},
	})
}

// TestOpenURL fetches ghr://<owner>/<repo>/<tag>/<asset>, as a gRPC
// registry's artifact_url names it.
func TestOpenURL(t *testing.T) {
	srv := fakegithub.New(t)
	t.Setenv("GITHUB_API_URL", srv.URL())
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("GH_TOKEN", "")
	srv.AddRelease("acme", "app", fakegithub.Release{Tag: "v1.0.0", Assets: map[string][]byte{"app.tar.gz": []byte("v1 bytes")}})
	opener := ghr.Scheme().(sources.URLOpener)
	opts := sources.Options{}.WithDefaults()

	rc, err := opener.OpenURL(context.Background(), "ghr://acme/app/v1.0.0/app.tar.gz", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "v1 bytes" {
		t.Fatalf("read %q, %v", b, err)
	}

	_, err = opener.OpenURL(context.Background(), "ghr://acme/app/v1.0.0/other.tar.gz", opts)
	if !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("missing asset: %v, want ErrNotFound", err)
	}
	if _, err := opener.OpenURL(context.Background(), "ghr://acme/app/app.tar.gz", opts); err == nil || !strings.Contains(err.Error(), "want ghr://") {
		t.Errorf("short URL: %v", err)
	}
}
