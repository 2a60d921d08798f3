package grpcsrc

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/fakegithub"
	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/ghr"
	"github.com/dewy-agent/dewy-agent/sources/grpc/dewypb"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

// TestDewyServerForms runs the source against a registry server built on
// Dewy's proto (dewypb is wire-identical) answering each artifact URL form
// Dewy's servers hand out, with CalVer tags and the artifact name asked for.
// ghr:// goes through the real ghr opener to the fake GitHub; s3:// and gs://
// reach their scheme's opener unchanged (?endpoint= included; the s3 and gs
// packages test that their openers honour it); img:// becomes an image
// release for the container runner.
func TestDewyServerForms(t *testing.T) {
	gh := fakegithub.New(t)
	gh.SetEnv(t, "")
	gh.AddRelease("acme", "app", fakegithub.Release{Tag: "2026.03.1", Assets: map[string][]byte{"app_linux_amd64.tar.gz": []byte("from github")}})

	var mu sync.Mutex
	var opened []string
	recording := func(scheme string) sources.Opener {
		return func(_ context.Context, raw string) (io.ReadCloser, error) {
			mu.Lock()
			defer mu.Unlock()
			opened = append(opened, raw)
			return io.NopCloser(strings.NewReader(scheme + " bytes")), nil
		}
	}
	ghrOpener := ghr.Scheme().(sources.URLOpener)
	openers := map[string]Opener{
		"ghr": func(ctx context.Context, raw string) (io.ReadCloser, error) {
			return ghrOpener.OpenURL(ctx, raw, sources.Options{}.WithDefaults())
		},
		"s3": recording("s3"),
		"gs": recording("gs"),
	}

	const s3URL = "s3://ap-northeast-1/bucket/app/2026.03.1/app_linux_amd64.tar.gz?endpoint=http%3A%2F%2F127.0.0.1%3A9000"
	tests := []struct {
		name, url string
		wantName  string // the artifact's name; "" for an image
		wantBody  string
		wantImage string
	}{
		{name: "ghr, Dewy's form", url: "ghr://acme/app/tag/2026.03.1/app_linux_amd64.tar.gz", wantName: "app_linux_amd64.tar.gz", wantBody: "from github"},
		{name: "ghr, our form", url: "ghr://acme/app/2026.03.1/app_linux_amd64.tar.gz", wantName: "app_linux_amd64.tar.gz", wantBody: "from github"},
		{name: "s3 with endpoint", url: s3URL, wantName: "app_linux_amd64.tar.gz", wantBody: "s3 bytes"},
		{name: "gs", url: "gs://bucket/app/2026.03.1/app_linux_amd64.tar.gz", wantName: "app_linux_amd64.tar.gz", wantBody: "gs bytes"},
		{name: "img", url: "img://127.0.0.1:5000/acme/app:2026.03.1", wantImage: "127.0.0.1:5000/acme/app:2026.03.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRegistry{res: &dewypb.CurrentResponse{Id: "id-1", Tag: "2026.03.1", ArtifactUrl: tt.url}}
			r := newRegistry(t, Config{Target: serve(t, f), NoTLS: true, Openers: openers}, nil)
			p := version.Policy{CalVer: "YYYY.0M.MICRO", Artifact: "app_linux_amd64.tar.gz", OS: "linux", Arch: "amd64"}
			c, err := r.Decide(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.lastCurrent(t).GetArifactName(); got != p.Artifact {
				t.Errorf("request's artifact name = %q, want %q", got, p.Artifact)
			}
			if c.Version.Original() != "2026.03.1" {
				t.Errorf("version %q", c.Version.Original())
			}
			if tt.wantImage != "" {
				if c.Release.Image != tt.wantImage || c.Artifact.Name != "" {
					t.Fatalf("image %q, artifact %q; want image %q and no artifact", c.Release.Image, c.Artifact.Name, tt.wantImage)
				}
				return
			}
			if c.Artifact.Name != tt.wantName || c.Release.Image != "" {
				t.Fatalf("artifact %q image %q, want artifact %q", c.Artifact.Name, c.Release.Image, tt.wantName)
			}
			rc, err := r.Open(t.Context(), c.Release, c.Artifact)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if b, err := io.ReadAll(rc); err != nil || string(b) != tt.wantBody {
				t.Fatalf("read %q, %v; want %q", b, err, tt.wantBody)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(opened) != 2 || opened[0] != s3URL {
		t.Errorf("openers got %q, want the s3 URL with its endpoint first", opened)
	}

	// Without calver, a CalVer tag is refused, as before.
	f := &fakeRegistry{res: &dewypb.CurrentResponse{Tag: "2026.03.1", ArtifactUrl: "gs://b/o.tar.gz"}}
	r := newRegistry(t, Config{Target: serve(t, f), NoTLS: true, Openers: openers}, nil)
	if _, err := r.Decide(t.Context(), version.Policy{}); err == nil || !strings.Contains(err.Error(), "not a semantic version") {
		t.Errorf("CalVer tag without calver: %v", err)
	}
}
