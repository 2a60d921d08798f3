package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources/file"
	ghrsrc "github.com/dewy-agent/dewy-agent/sources/ghr"
	grpcsrc "github.com/dewy-agent/dewy-agent/sources/grpc"
	"github.com/dewy-agent/dewy-agent/sources/gs"
	"github.com/dewy-agent/dewy-agent/sources/oci"
	"github.com/dewy-agent/dewy-agent/sources/s3"
)

func TestParseRegistry(t *testing.T) {
	yes, no := true, false
	str := func(s string) *string { return &s }
	tests := []struct {
		name         string
		in           string
		want         Registry
		wantPre      *bool
		wantArtifact *string
		// wantProblems are the summaries, in order.
		wantProblems []string
	}{
		{
			name: "ghr",
			in:   "ghr://linyows/myapp",
			want: Registry{URL: "ghr://linyows/myapp", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}},
		},
		{
			name:         "ghr with both options",
			in:           "ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz",
			want:         Registry{URL: "ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}},
			wantPre:      &yes,
			wantArtifact: str("myapp_linux_amd64.tar.gz"),
		},
		{
			name:    "pre-release false",
			in:      "ghr://o/r?pre-release=false",
			want:    Registry{URL: "ghr://o/r?pre-release=false", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantPre: &no,
		},
		{
			name: "upper-case scheme",
			in:   "GHR://o/r",
			want: Registry{URL: "GHR://o/r", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
		},
		{
			name: "file",
			in:   "file:///srv/releases/site",
			want: Registry{URL: "file:///srv/releases/site", Scheme: "file", Settings: file.Config{Path: "/srv/releases/site"}},
		},
		{
			name: "file path is cleaned and unescaped",
			in:   "file:///srv/my%20releases/./site/",
			want: Registry{URL: "file:///srv/my%20releases/./site/", Scheme: "file", Settings: file.Config{Path: "/srv/my releases/site"}},
		},
		{
			name:         "file with options",
			in:           "file:///srv/site?artifact=site.zip",
			want:         Registry{URL: "file:///srv/site?artifact=site.zip", Scheme: "file", Settings: file.Config{Path: "/srv/site"}},
			wantArtifact: str("site.zip"),
		},
		{
			name:         "empty",
			in:           "",
			wantProblems: []string{"Empty registry"},
		},
		{
			name:         "white space",
			in:           " ghr://o/r",
			wantProblems: []string{"Invalid registry URL"},
		},
		{
			name:         "not a URL",
			in:           "ghr://o/r%zz",
			wantProblems: []string{"Invalid registry URL"},
		},
		{
			name:         "no scheme",
			in:           "linyows/myapp",
			want:         Registry{URL: "linyows/myapp"},
			wantProblems: []string{"Missing registry scheme"},
		},
		{
			name:         "unknown scheme",
			in:           "ftp://host/path",
			want:         Registry{URL: "ftp://host/path", Scheme: "ftp"},
			wantProblems: []string{"Unknown registry scheme"},
		},
		{
			name:    "img on GHCR",
			in:      "img://ghcr.io/acme/app?pre-release=true",
			want:    Registry{URL: "img://ghcr.io/acme/app?pre-release=true", Scheme: "img", Settings: oci.Config{Repository: "ghcr.io/acme/app"}},
			wantPre: &yes,
		},
		{
			name: "img Docker Hub short form",
			in:   "img://myuser/myapp",
			want: Registry{URL: "img://myuser/myapp", Scheme: "img", Settings: oci.Config{Repository: "myuser/myapp"}},
		},
		{
			name: "img official image",
			in:   "img://nginx",
			want: Registry{URL: "img://nginx", Scheme: "img", Settings: oci.Config{Repository: "nginx"}},
		},
		{
			name: "img private registry with a port",
			in:   "img://127.0.0.1:5000/team/app",
			want: Registry{URL: "img://127.0.0.1:5000/team/app", Scheme: "img", Settings: oci.Config{Repository: "127.0.0.1:5000/team/app"}},
		},
		{
			name:         "img with a tag",
			in:           "img://ghcr.io/acme/app:v1.0.0",
			want:         Registry{URL: "img://ghcr.io/acme/app:v1.0.0", Scheme: "img"},
			wantProblems: []string{"Invalid img registry"},
		},
		{
			name:         "img refuses artifact",
			in:           "img://ghcr.io/acme/app?artifact=x.tar.gz",
			want:         Registry{URL: "img://ghcr.io/acme/app?artifact=x.tar.gz", Scheme: "img", Settings: oci.Config{Repository: "ghcr.io/acme/app"}},
			wantProblems: []string{"Unknown registry option"},
		},
		{
			name: "s3 with a nested prefix",
			in:   "s3://ap-northeast-1/my-releases/team/myapp",
			want: Registry{URL: "s3://ap-northeast-1/my-releases/team/myapp", Scheme: "s3", Settings: s3.Config{Region: "ap-northeast-1", Bucket: "my-releases", Prefix: "team/myapp"}},
		},
		{
			name: "s3 bucket without a prefix",
			in:   "s3://us-east-1/my-releases",
			want: Registry{URL: "s3://us-east-1/my-releases", Scheme: "s3", Settings: s3.Config{Region: "us-east-1", Bucket: "my-releases", Prefix: ""}},
		},
		{
			name:    "s3 with an endpoint and pre-release",
			in:      "s3://auto/rel/app?endpoint=https://s3.example.com&pre-release=true",
			want:    Registry{URL: "s3://auto/rel/app?endpoint=https://s3.example.com&pre-release=true", Scheme: "s3", Settings: s3.Config{Region: "auto", Bucket: "rel", Prefix: "app", Endpoint: "https://s3.example.com"}},
			wantPre: &yes,
		},
		{
			name:         "s3 endpoint that is not a URL",
			in:           "s3://auto/rel/app?endpoint=s3.example.com",
			want:         Registry{URL: "s3://auto/rel/app?endpoint=s3.example.com", Scheme: "s3"},
			wantProblems: []string{"Invalid endpoint option"},
		},
		{
			name:         "s3 without a bucket",
			in:           "s3://us-east-1",
			want:         Registry{URL: "s3://us-east-1", Scheme: "s3"},
			wantProblems: []string{"Invalid s3 registry"},
		},
		{
			name:         "s3 credentials",
			in:           "s3://AKIA:secret@us-east-1/b/p",
			want:         Registry{URL: "s3://us-east-1/b/p", Scheme: "s3", Settings: s3.Config{Region: "us-east-1", Bucket: "b", Prefix: "p"}},
			wantProblems: []string{"Credentials in registry URL"},
		},
		{
			name:         "gs with a prefix and an artifact",
			in:           "gs://my-releases/myapp?artifact=site.tar.gz",
			want:         Registry{URL: "gs://my-releases/myapp?artifact=site.tar.gz", Scheme: "gs", Settings: gs.Config{Bucket: "my-releases", Prefix: "myapp"}},
			wantArtifact: str("site.tar.gz"),
		},
		{
			name:         "gs without a bucket",
			in:           "gs:///myapp",
			want:         Registry{URL: "gs:///myapp", Scheme: "gs"},
			wantProblems: []string{"Invalid gs registry"},
		},
		{
			name: "grpc plaintext",
			in:   "grpc://localhost:9000?no-tls=true",
			want: Registry{URL: "grpc://localhost:9000?no-tls=true", Scheme: "grpc", Settings: grpcsrc.Config{Target: "localhost:9000", NoTLS: true}},
		},
		{
			name: "grpc with TLS on the default port",
			in:   "grpc://registry.example.com",
			want: Registry{URL: "grpc://registry.example.com", Scheme: "grpc", Settings: grpcsrc.Config{Target: "registry.example.com"}},
		},
		{
			name:         "grpc refuses pre-release",
			in:           "grpc://registry.example.com:9000?pre-release=true",
			want:         Registry{URL: "grpc://registry.example.com:9000?pre-release=true", Scheme: "grpc", Settings: grpcsrc.Config{Target: "registry.example.com:9000"}},
			wantProblems: []string{"Unknown registry option"},
		},
		{
			name:         "grpc with a path",
			in:           "grpc://registry.example.com:9000/myapp",
			want:         Registry{URL: "grpc://registry.example.com:9000/myapp", Scheme: "grpc"},
			wantProblems: []string{"Invalid grpc registry"},
		},
		{
			name:         "grpc no-tls not a bool",
			in:           "grpc://h:1?no-tls=yes",
			want:         Registry{URL: "grpc://h:1?no-tls=yes", Scheme: "grpc"},
			wantProblems: []string{"Invalid no-tls option"},
		},
		{
			name:         "ghr with one part",
			in:           "ghr://linyows",
			want:         Registry{URL: "ghr://linyows", Scheme: "ghr"},
			wantProblems: []string{"Invalid ghr registry"},
		},
		{
			name:         "ghr with three parts",
			in:           "ghr://linyows/myapp/extra",
			want:         Registry{URL: "ghr://linyows/myapp/extra", Scheme: "ghr"},
			wantProblems: []string{"Invalid ghr registry"},
		},
		{
			name:         "ghr with an empty owner",
			in:           "ghr:///myapp",
			want:         Registry{URL: "ghr:///myapp", Scheme: "ghr"},
			wantProblems: []string{"Invalid ghr registry"},
		},
		{
			name:         "ghr without slashes",
			in:           "ghr:linyows/myapp",
			want:         Registry{URL: "ghr:linyows/myapp", Scheme: "ghr"},
			wantProblems: []string{"Invalid ghr registry"},
		},
		{
			name:         "ghr owner with a port",
			in:           "ghr://owner:8080/repo",
			want:         Registry{URL: "ghr://owner:8080/repo", Scheme: "ghr"},
			wantProblems: []string{"Invalid GitHub owner"},
		},
		{
			name:         "file with a host",
			in:           "file://releases/site",
			want:         Registry{URL: "file://releases/site", Scheme: "file"},
			wantProblems: []string{"Invalid file registry"},
		},
		{
			name:         "file relative",
			in:           "file:releases/site",
			want:         Registry{URL: "file:releases/site", Scheme: "file"},
			wantProblems: []string{"Relative file registry"},
		},
		{
			name:         "file without a path",
			in:           "file://",
			want:         Registry{URL: "file://", Scheme: "file"},
			wantProblems: []string{"Invalid file registry"},
		},
		{
			name:         "unknown and repeated options, all reported in key order",
			in:           "ghr://o/r?zeta=1&artifact=a&artifact=b&alpha=2",
			want:         Registry{URL: "ghr://o/r?zeta=1&artifact=a&artifact=b&alpha=2", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Unknown registry option", "Repeated registry option", "Unknown registry option"},
		},
		{
			name:         "pre-release not a bool",
			in:           "ghr://o/r?pre-release=1",
			want:         Registry{URL: "ghr://o/r?pre-release=1", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Invalid pre-release option"},
		},
		{
			name:         "pre-release without value",
			in:           "ghr://o/r?pre-release",
			want:         Registry{URL: "ghr://o/r?pre-release", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Invalid pre-release option"},
		},
		{
			name:         "empty artifact",
			in:           "ghr://o/r?artifact=",
			want:         Registry{URL: "ghr://o/r?artifact=", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Empty artifact option"},
		},
		{
			name:         "artifact is a path",
			in:           "ghr://o/r?artifact=dist/app.tar.gz",
			want:         Registry{URL: "ghr://o/r?artifact=dist/app.tar.gz", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Invalid artifact option"},
		},
		{
			name:         "bad query encoding",
			in:           "ghr://o/r?artifact=a;b",
			want:         Registry{URL: "ghr://o/r?artifact=a;b", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Invalid registry options"},
		},
		{
			name:         "fragment",
			in:           "ghr://o/r#main",
			want:         Registry{URL: "ghr://o/r#main", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
			wantProblems: []string{"Invalid registry URL"},
		},
		{
			name:         "credentials are reported and stripped from URL",
			in:           "ghr://octocat:s3cr3t@linyows/myapp?pre-release=true",
			want:         Registry{URL: "ghr://linyows/myapp?pre-release=true", Scheme: "ghr", Settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}},
			wantPre:      &yes,
			wantProblems: []string{"Credentials in registry URL"},
		},
		{
			name:         "user name alone is stripped too",
			in:           "file://s3cr3t@/srv/site",
			want:         Registry{URL: "file:///srv/site", Scheme: "file", Settings: file.Config{Path: "/srv/site"}},
			wantProblems: []string{"Credentials in registry URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, probs := parseRegistry(tt.in, hcl.Range{Filename: "test.hcl"})
			if !reflect.DeepEqual(got.registry, tt.want) {
				t.Errorf("registry = %#v, want %#v", got.registry, tt.want)
			}
			if !reflect.DeepEqual(got.preRelease, tt.wantPre) {
				t.Errorf("pre-release = %v, want %v", deref(got.preRelease), deref(tt.wantPre))
			}
			if !reflect.DeepEqual(got.artifact, tt.wantArtifact) {
				t.Errorf("artifact = %v, want %v", deref(got.artifact), deref(tt.wantArtifact))
			}
			var summaries []string
			for _, p := range probs {
				summaries = append(summaries, p.Summary)
				if p.Detail == "" || p.Subject == nil {
					t.Errorf("problem %q has no detail or no range", p.Summary)
				}
				// Secrets never reach a message.
				if strings.Contains(p.Summary+p.Detail, "s3cr3t") {
					t.Errorf("problem repeats the credentials: %s: %s", p.Summary, p.Detail)
				}
			}
			if !reflect.DeepEqual(summaries, tt.wantProblems) {
				t.Errorf("problems = %q, want %q", summaries, tt.wantProblems)
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestCredentialsNeverInDiagnostics(t *testing.T) {
	src := []byte("app \"api\" {\n  registry = \"ghr://octocat:s3cr3t@linyows/myapp?token=hunter2\"\n  runner \"assets\" {}\n}\n")
	_, diags := Parse("creds.hcl", src)
	if !diags.HasErrors() {
		t.Fatal("credentials in the URL were accepted")
	}
	for _, d := range diags {
		for _, secret := range []string{"s3cr3t", "hunter2"} {
			if strings.Contains(d.Summary+d.Detail, secret) {
				t.Errorf("diagnostic repeats a secret: %s: %s", d.Summary, d.Detail)
			}
		}
	}
}
