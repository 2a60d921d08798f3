package ghr_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
)

func TestSchemeDecode(t *testing.T) {
	rng := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 2, Column: 14}}
	tests := []struct {
		url, wantErr string
		want         sources.Settings
	}{
		{url: "ghr://linyows/myapp", want: ghr.Config{Owner: "linyows", Repo: "myapp"}},
		{url: "ghr://linyows", wantErr: "Invalid ghr registry"},
		{url: "ghr://owner:8080/repo", wantErr: "Invalid GitHub owner"},
		{url: "ghr://owner/re%20po", wantErr: "Invalid GitHub repository"},
		{url: "ghr://owner/..", wantErr: "Invalid GitHub repository"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := ghr.Scheme().Decode(u, nil, rng)
			if tt.wantErr == "" {
				if diags.HasErrors() || got != tt.want {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.want)
				}
				return
			}
			if got != nil || len(diags) != 1 || *diags[0].Subject != rng || diags[0].Summary != tt.wantErr {
				t.Fatalf("Decode = %#v, %v; want one %q at the registry", got, diags, tt.wantErr)
			}
		})
	}
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
