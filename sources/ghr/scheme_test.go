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
	srv.SetEnv(t, "")
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
	// Dewy's form: ghr://<owner>/<repo>/tag/<tag>/<asset>.
	rc2, err := opener.OpenURL(context.Background(), "ghr://acme/app/tag/v1.0.0/app.tar.gz", opts)
	if err != nil {
		t.Fatalf("Dewy's form: %v", err)
	}
	defer rc2.Close()
	if b, err := io.ReadAll(rc2); err != nil || string(b) != "v1 bytes" {
		t.Fatalf("Dewy's form read %q, %v", b, err)
	}
	if _, err := opener.OpenURL(context.Background(), "ghr://acme/app/tag//app.tar.gz", opts); err == nil || !strings.Contains(err.Error(), "want ghr://") {
		t.Errorf("empty tag: %v", err)
	}
}

// TestGitHubEndpoint: GITHUB_ENDPOINT, Dewy's name for the API URL, is used
// when GITHUB_API_URL is not set, and loses to it when both are.
func TestGitHubEndpoint(t *testing.T) {
	srv := fakegithub.New(t)
	srv.AddRelease("acme", "app", fakegithub.Release{Tag: "v1.0.0", Assets: map[string][]byte{"app.tar.gz": []byte("x")}})
	for name, env := range map[string]map[string]string{
		"endpoint only": {"GITHUB_ENDPOINT": srv.URL()},
		"api url wins":  {"GITHUB_ENDPOINT": "http://127.0.0.1:1/", "GITHUB_API_URL": srv.URL()},
	} {
		t.Run(name, func(t *testing.T) {
			g, err := ghr.NewWithEnv("acme", "app", sources.Options{}.WithDefaults(), func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if rels, err := g.Releases(context.Background()); err != nil || len(rels) != 1 {
				t.Fatalf("Releases = %v, %v", rels, err)
			}
		})
	}
	_, err := ghr.NewWithEnv("acme", "app", sources.Options{}, func(k string) string {
		return map[string]string{"GITHUB_ENDPOINT": "ftp://x"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "GITHUB_ENDPOINT") {
		t.Errorf("bad GITHUB_ENDPOINT: %v, want an error naming it", err)
	}
}
