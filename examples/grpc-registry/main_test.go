package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dewy-agent/dewy-agent/internal/testcert"
	"github.com/dewy-agent/dewy-agent/internal/testkit"

	"go.uber.org/goleak"

	"github.com/dewy-agent/dewy-agent/sources"
	grpcsrc "github.com/dewy-agent/dewy-agent/sources/grpc"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// releases writes a registry folder: version -> artifact names. Each artifact's
// content is "<version>/<name>".
func releases(t *testing.T, layout map[string][]string) string {
	t.Helper()
	dir := t.TempDir()
	for v, names := range layout {
		if err := os.MkdirAll(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, v, n), []byte(v+"/"+n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// run starts the program in-process and stops it when the test ends.
func run(t *testing.T, o options) (*server, *testkit.LogBuffer) {
	t.Helper()
	logs := &testkit.LogBuffer{}
	s, err := start(o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, logs
}

func source(t *testing.T, cfg grpcsrc.Config) *grpcsrc.Registry {
	t.Helper()
	src, err := grpcsrc.New(cfg, sources.Options{HTTPClient: &http.Client{}, Logger: slog.New(slog.DiscardHandler), Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	return src
}

func TestRegistry(t *testing.T) {
	dir := releases(t, map[string][]string{
		"v1.0.0":      {"app_linux_amd64.tar.gz", "app_darwin_arm64.tar.gz", "app-tools.tar.gz"},
		"v1.1.0":      {"app_linux_amd64.tar.gz", "SHA256SUMS"},
		"v2.0.0-rc.1": {"app_linux_amd64.tar.gz"},
		"notes":       {"README"},
	})
	tests := []struct {
		name       string
		preRelease bool
		policy     version.Policy
		wantTag    string
		wantName   string
		wantErr    error
	}{
		{name: "newest stable for linux/amd64", policy: version.Policy{OS: "linux", Arch: "amd64"}, wantTag: "v1.1.0", wantName: "app_linux_amd64.tar.gz"},
		{name: "newest with an artifact for darwin/arm64", policy: version.Policy{OS: "darwin", Arch: "arm64"}, wantTag: "v1.0.0", wantName: "app_darwin_arm64.tar.gz"},
		{name: "pre-releases with the flag", preRelease: true, policy: version.Policy{OS: "linux", Arch: "amd64"}, wantTag: "v2.0.0-rc.1", wantName: "app_linux_amd64.tar.gz"},
		{name: "exact artifact name", policy: version.Policy{OS: "linux", Arch: "amd64", Artifact: "app-tools.tar.gz"}, wantTag: "v1.0.0", wantName: "app-tools.tar.gz"},
		{name: "nothing for windows", policy: version.Policy{OS: "windows", Arch: "amd64"}, wantErr: sources.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, logs := run(t, options{listen: "127.0.0.1:0", http: "127.0.0.1:0", dir: dir, preRelease: tt.preRelease})
			src := source(t, grpcsrc.Config{Target: s.grpcLis.Addr().String(), NoTLS: true})
			c, err := src.Decide(t.Context(), tt.policy)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Decide error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if c.Version.Original() != tt.wantTag || c.Artifact.Name != tt.wantName {
				t.Fatalf("Decide = %s %s, want %s %s", c.Version.Original(), c.Artifact.Name, tt.wantTag, tt.wantName)
			}
			wantURL := "http://" + s.httpLis.Addr().String() + "/" + tt.wantTag + "/" + tt.wantName
			if c.Artifact.Ref != wantURL {
				t.Errorf("artifact_url = %s, want %s", c.Artifact.Ref, wantURL)
			}
			if c.Release.Created.IsZero() {
				t.Error("created_at is not set")
			}
			rc, err := src.Open(t.Context(), c.Release, c.Artifact)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			body, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || string(body) != tt.wantTag+"/"+tt.wantName {
				t.Fatalf("artifact = %q, %v; want %q", body, err, tt.wantTag+"/"+tt.wantName)
			}

			if err := src.Report(t.Context(), sources.Report{App: "web", Release: c.Release, Artifact: c.Artifact, Err: errors.New("exit status 3")}); err != nil {
				t.Fatalf("Report: %v", err)
			}
			log := logs.String()
			id := between(log, "msg=current id=", " ")
			if id == "" {
				t.Fatalf("no current answer logged:\n%s", log)
			}
			want := `msg="report: deploy failed" id=` + id + " tag=" + tt.wantTag + ` command=dewy-agent err="exit status 3"`
			if !strings.Contains(log, want) {
				t.Errorf("log has no %q:\n%s", want, log)
			}
		})
	}
}

func between(s, before, after string) string {
	_, rest, ok := strings.Cut(s, before)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, after)
	return v
}

func TestTLSAndURL(t *testing.T) {
	dir := releases(t, map[string][]string{"v1.0.0": {"app_linux_amd64.tar.gz"}})
	certFile, keyFile, pool := testcert.Files(t)
	s, _ := run(t, options{listen: "127.0.0.1:0", dir: dir, url: "https://cdn.example.com/releases/app", tlsCert: certFile, tlsKey: keyFile})
	src := source(t, grpcsrc.Config{Target: s.grpcLis.Addr().String(), RootCAs: pool})
	c, err := src.Decide(t.Context(), version.Policy{OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatalf("Decide over TLS: %v", err)
	}
	if want := "https://cdn.example.com/releases/app/v1.0.0/app_linux_amd64.tar.gz"; c.Artifact.Ref != want {
		t.Errorf("artifact_url = %s, want %s", c.Artifact.Ref, want)
	}
	if s.httpLis != nil {
		t.Error("an HTTP server runs without -http")
	}
}

func TestStartRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		o       options
		wantErr string
	}{
		{name: "no dir", o: options{listen: "127.0.0.1:0", http: "127.0.0.1:0"}, wantErr: "-dir is required"},
		{name: "dir missing", o: options{listen: "127.0.0.1:0", http: "127.0.0.1:0", dir: filepath.Join(dir, "gone")}, wantErr: "is not a folder"},
		{name: "no http and no url", o: options{listen: "127.0.0.1:0", dir: dir}, wantErr: "-url is required"},
		{name: "relative url", o: options{listen: "127.0.0.1:0", dir: dir, url: "/releases"}, wantErr: "not an absolute URL"},
		{name: "cert without key", o: options{listen: "127.0.0.1:0", http: "127.0.0.1:0", dir: dir, tlsCert: "c.pem"}, wantErr: "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := start(tt.o, slog.New(slog.DiscardHandler))
			if err == nil {
				_ = s.serve(canceled())
				t.Fatalf("start succeeded, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("start error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
