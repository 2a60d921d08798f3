package grpcsrc

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
	"github.com/dewy-agent/dewy-agent/sources/version"
)

func TestSchemeDecode(t *testing.T) {
	noTLS := map[string]string{"no-tls": "true"}
	sourcestest.Decode(t, Scheme(), []sourcestest.DecodeCase{
		{URL: "grpc://localhost:9000", Options: noTLS, Want: Config{Target: "localhost:9000", NoTLS: true}},
		{URL: "grpc://registry.example.com", Want: Config{Target: "registry.example.com"}},
		{URL: "grpc://localhost", Options: noTLS, WantErr: `target "localhost" has no port; a port is required with no-tls`},
		{URL: "grpc://h:1", Options: map[string]string{"no-tls": "yes"}, WantErr: "?no-tls=yes must be true or false."},
		{URL: "grpc://h:1/app", WantErr: "a gRPC registry URL has no path"},
		{URL: "grpc://h:99999", WantErr: `port "99999" is not a number from 1 to 65535`},
	})
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
