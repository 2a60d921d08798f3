package s3

import (
	"context"
	"io"
	"net/url"
	"testing"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/sourcestest"
)

func TestSchemeDecode(t *testing.T) {
	sourcestest.Decode(t, Scheme(), []sourcestest.DecodeCase{
		{URL: "s3://ap-northeast-1/rel/team/app", Want: Config{Region: "ap-northeast-1", Bucket: "rel", Prefix: "team/app"}},
		{URL: "s3://auto/rel", Options: map[string]string{"endpoint": "https://s3.example.com"}, Want: Config{Region: "auto", Bucket: "rel", Endpoint: "https://s3.example.com"}},
		{URL: "s3://us-east-1", WantErr: "Invalid s3 registry"},
		{URL: "s3://us_east/rel", WantErr: "Invalid S3 region"},
		{URL: "s3://us-east-1/rel/a/../b", WantErr: `has an empty, "." or ".." element`},
		{URL: "s3://auto/rel", Options: map[string]string{"endpoint": "https://key:secret@s3.example.com"}, WantErr: "Invalid endpoint option"},
	})
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
