package s3

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

func TestSchemeDecode(t *testing.T) {
	rng := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 3, Column: 14}}
	tests := []struct {
		url     string
		options map[string]string
		want    sources.Settings
		wantErr string
	}{
		{url: "s3://ap-northeast-1/rel/team/app", want: Config{Region: "ap-northeast-1", Bucket: "rel", Prefix: "team/app"}},
		{url: "s3://auto/rel", options: map[string]string{"endpoint": "https://s3.example.com"}, want: Config{Region: "auto", Bucket: "rel", Endpoint: "https://s3.example.com"}},
		{url: "s3://us-east-1", wantErr: "Invalid s3 registry"},
		{url: "s3://us_east/rel", wantErr: "Invalid S3 region"},
		{url: "s3://us-east-1/rel/a/../b", wantErr: `has an empty, "." or ".." element`},
		{url: "s3://auto/rel", options: map[string]string{"endpoint": "https://key:secret@s3.example.com"}, wantErr: "Invalid endpoint option"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := Scheme().Decode(u, tt.options, rng)
			if tt.wantErr == "" {
				if diags.HasErrors() || got != tt.want {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.want)
				}
				return
			}
			if got != nil || len(diags) != 1 || diags[0].Subject == nil || *diags[0].Subject != rng ||
				!strings.Contains(diags[0].Summary+": "+diags[0].Detail, tt.wantErr) {
				t.Fatalf("Decode = %#v, %v; want one error at the registry saying %q", got, diags, tt.wantErr)
			}
			if strings.Contains(diags[0].Detail, "secret") {
				t.Errorf("diagnostic repeats a secret: %s", diags[0].Detail)
			}
		})
	}
}

// TestOpenURL fetches s3://<region>/<bucket>/<key>, as a gRPC registry's
// artifact_url names it, from the fake through AWS_ENDPOINT_URL.
func TestOpenURL(t *testing.T) {
	f := newFake(t)
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", f.url)
	f.put(t, "myapp/v1.0.0/app.tar.gz", "artifact bytes")
	opener, ok := Scheme().(sources.URLOpener)
	if !ok {
		t.Fatal("the s3 scheme is not a URLOpener")
	}
	rc, err := opener.OpenURL(context.Background(), "s3://ap-northeast-1/"+bucket+"/myapp/v1.0.0/app.tar.gz", sources.Options{HTTPClient: f.client()})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || string(b) != "artifact bytes" {
		t.Fatalf("read %q, %v", b, err)
	}
}

// TestOpenURLEndpoint: Dewy's servers name an S3-compatible service as
// s3://<region>/<bucket>/<key>?endpoint=...; the option is honoured (the
// environment points nowhere).
func TestOpenURLEndpoint(t *testing.T) {
	f := newFake(t)
	awsEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	f.put(t, "myapp/2026.01.0/app.tar.gz", "dewy bytes")
	opener := Scheme().(sources.URLOpener)
	raw := "s3://ap-northeast-1/" + bucket + "/myapp/2026.01.0/app.tar.gz?endpoint=" + url.QueryEscape(f.url)
	rc, err := opener.OpenURL(context.Background(), raw, sources.Options{HTTPClient: f.client()})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); err != nil || string(b) != "dewy bytes" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := opener.OpenURL(context.Background(), "s3://ap-northeast-1/"+bucket+"/k?endpoint=ftp://x", sources.Options{HTTPClient: f.client()}); err == nil {
		t.Error("an ftp endpoint was accepted")
	}
}
