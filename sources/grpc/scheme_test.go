package grpcsrc

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestSchemeDecode(t *testing.T) {
	rng := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 5, Column: 14}}
	tests := []struct {
		url     string
		options map[string]string
		want    sources.Settings
		wantErr string
	}{
		{url: "grpc://localhost:9000", options: map[string]string{"no-tls": "true"}, want: Config{Target: "localhost:9000", NoTLS: true}},
		{url: "grpc://registry.example.com", want: Config{Target: "registry.example.com"}},
		{url: "grpc://localhost", options: map[string]string{"no-tls": "true"}, wantErr: `target "localhost" has no port; a port is required with no-tls`},
		{url: "grpc://h:1", options: map[string]string{"no-tls": "yes"}, wantErr: "?no-tls=yes must be true or false."},
		{url: "grpc://h:1/app", wantErr: "a gRPC registry URL has no path"},
		{url: "grpc://h:99999", wantErr: `port "99999" is not a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := Scheme().Decode(u, tt.options, rng)
			if tt.wantErr == "" {
				if diags.HasErrors() {
					t.Fatal(diags)
				}
				if c, ok := got.(Config); !ok || c.Target != tt.want.(Config).Target || c.NoTLS != tt.want.(Config).NoTLS {
					t.Fatalf("Decode = %#v, want %#v", got, tt.want)
				}
				return
			}
			if got != nil || len(diags) != 1 || *diags[0].Subject != rng || !strings.Contains(diags[0].Detail, tt.wantErr) {
				t.Fatalf("Decode = %#v, %v; want one error at the registry saying %q", got, diags, tt.wantErr)
			}
		})
	}
}

// TestSettingsNew: the openers and the runner kind of the options reach the
// source, which uses the openers for artifact URLs of their schemes.
func TestSettingsNew(t *testing.T) {
	called := false
	opener := func(_ context.Context, raw string) (io.ReadCloser, error) {
		called = raw == "s3://r/b/k"
		return io.NopCloser(strings.NewReader("x")), nil
	}
	src, err := Config{Target: "localhost:9000", NoTLS: true}.New(sources.Options{
		Openers: map[string]sources.Opener{"s3": opener},
		Runner:  "server",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := src.(*Registry)
	defer r.Close()
	if r.command != "server" {
		t.Errorf("command = %q, want the runner kind", r.command)
	}
	rc, err := r.Open(context.Background(), version.Release{}, version.Asset{Name: "k", Ref: "s3://r/b/k"})
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if !called {
		t.Error("the s3 opener was not used")
	}
}
