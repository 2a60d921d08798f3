package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
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
		name string
		in   string
		// url is the URL kept when it is not in as written (credentials
		// are removed; nothing is kept of what does not parse).
		url      *string
		scheme   string
		settings sources.Settings
		pre      *bool
		artifact *string
		// problems are the summaries, in order.
		problems []string
	}{
		{name: "ghr", in: "ghr://linyows/myapp", scheme: "ghr", settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}},
		{name: "ghr with both options", in: "ghr://linyows/myapp?pre-release=true&artifact=myapp_linux_amd64.tar.gz", scheme: "ghr", settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}, pre: &yes, artifact: str("myapp_linux_amd64.tar.gz")},
		{name: "pre-release false", in: "ghr://o/r?pre-release=false", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, pre: &no},
		{name: "upper-case scheme", in: "GHR://o/r", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}},
		{name: "file", in: "file:///srv/releases/site", scheme: "file", settings: file.Config{Path: "/srv/releases/site"}},
		{name: "file path is cleaned and unescaped", in: "file:///srv/my%20releases/./site/", scheme: "file", settings: file.Config{Path: "/srv/my releases/site"}},
		{name: "file with options", in: "file:///srv/site?artifact=site.zip", scheme: "file", settings: file.Config{Path: "/srv/site"}, artifact: str("site.zip")},
		{name: "empty", in: "", problems: []string{"Empty registry"}},
		{name: "white space", in: " ghr://o/r", url: str(""), problems: []string{"Invalid registry URL"}},
		{name: "not a URL", in: "ghr://o/r%zz", url: str(""), problems: []string{"Invalid registry URL"}},
		{name: "no scheme", in: "linyows/myapp", problems: []string{"Missing registry scheme"}},
		{name: "unknown scheme", in: "ftp://host/path", scheme: "ftp", problems: []string{"Unknown registry scheme"}},
		{name: "img on GHCR", in: "img://ghcr.io/acme/app?pre-release=true", scheme: "img", settings: oci.Config{Repository: "ghcr.io/acme/app"}, pre: &yes},
		{name: "img Docker Hub short form", in: "img://myuser/myapp", scheme: "img", settings: oci.Config{Repository: "myuser/myapp"}},
		{name: "img official image", in: "img://nginx", scheme: "img", settings: oci.Config{Repository: "nginx"}},
		{name: "img private registry with a port", in: "img://127.0.0.1:5000/team/app", scheme: "img", settings: oci.Config{Repository: "127.0.0.1:5000/team/app"}},
		{name: "img with a tag", in: "img://ghcr.io/acme/app:v1.0.0", scheme: "img", problems: []string{"Invalid img registry"}},
		{name: "img refuses artifact", in: "img://ghcr.io/acme/app?artifact=x.tar.gz", scheme: "img", settings: oci.Config{Repository: "ghcr.io/acme/app"}, problems: []string{"Unknown registry option"}},
		{name: "s3 with a nested prefix", in: "s3://ap-northeast-1/my-releases/team/myapp", scheme: "s3", settings: s3.Config{Region: "ap-northeast-1", Bucket: "my-releases", Prefix: "team/myapp"}},
		{name: "s3 bucket without a prefix", in: "s3://us-east-1/my-releases", scheme: "s3", settings: s3.Config{Region: "us-east-1", Bucket: "my-releases", Prefix: ""}},
		{name: "s3 with an endpoint and pre-release", in: "s3://auto/rel/app?endpoint=https://s3.example.com&pre-release=true", scheme: "s3", settings: s3.Config{Region: "auto", Bucket: "rel", Prefix: "app", Endpoint: "https://s3.example.com"}, pre: &yes},
		{name: "s3 endpoint that is not a URL", in: "s3://auto/rel/app?endpoint=s3.example.com", scheme: "s3", problems: []string{"Invalid endpoint option"}},
		{name: "s3 without a bucket", in: "s3://us-east-1", scheme: "s3", problems: []string{"Invalid s3 registry"}},
		{name: "s3 credentials", in: "s3://AKIA:secret@us-east-1/b/p", url: str("s3://us-east-1/b/p"), scheme: "s3", settings: s3.Config{Region: "us-east-1", Bucket: "b", Prefix: "p"}, problems: []string{"Credentials in registry URL"}},
		{name: "gs with a prefix and an artifact", in: "gs://my-releases/myapp?artifact=site.tar.gz", scheme: "gs", settings: gs.Config{Bucket: "my-releases", Prefix: "myapp"}, artifact: str("site.tar.gz")},
		{name: "gs without a bucket", in: "gs:///myapp", scheme: "gs", problems: []string{"Invalid gs registry"}},
		{name: "grpc plaintext", in: "grpc://localhost:9000?no-tls=true", scheme: "grpc", settings: grpcsrc.Config{Target: "localhost:9000", NoTLS: true}},
		{name: "grpc with TLS on the default port", in: "grpc://registry.example.com", scheme: "grpc", settings: grpcsrc.Config{Target: "registry.example.com"}},
		{name: "grpc refuses pre-release", in: "grpc://registry.example.com:9000?pre-release=true", scheme: "grpc", settings: grpcsrc.Config{Target: "registry.example.com:9000"}, problems: []string{"Unknown registry option"}},
		{name: "grpc with a path", in: "grpc://registry.example.com:9000/myapp", scheme: "grpc", problems: []string{"Invalid grpc registry"}},
		{name: "grpc no-tls not a bool", in: "grpc://h:1?no-tls=yes", scheme: "grpc", problems: []string{"Invalid no-tls option"}},
		{name: "ghr with one part", in: "ghr://linyows", scheme: "ghr", problems: []string{"Invalid ghr registry"}},
		{name: "ghr with three parts", in: "ghr://linyows/myapp/extra", scheme: "ghr", problems: []string{"Invalid ghr registry"}},
		{name: "ghr with an empty owner", in: "ghr:///myapp", scheme: "ghr", problems: []string{"Invalid ghr registry"}},
		{name: "ghr without slashes", in: "ghr:linyows/myapp", scheme: "ghr", problems: []string{"Invalid ghr registry"}},
		{name: "ghr owner with a port", in: "ghr://owner:8080/repo", scheme: "ghr", problems: []string{"Invalid GitHub owner"}},
		{name: "file with a host", in: "file://releases/site", scheme: "file", problems: []string{"Invalid file registry"}},
		{name: "file relative", in: "file:releases/site", scheme: "file", problems: []string{"Relative file registry"}},
		{name: "file without a path", in: "file://", scheme: "file", problems: []string{"Invalid file registry"}},
		{name: "unknown and repeated options, all reported in key order", in: "ghr://o/r?zeta=1&artifact=a&artifact=b&alpha=2", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Unknown registry option", "Repeated registry option", "Unknown registry option"}},
		{name: "pre-release not a bool", in: "ghr://o/r?pre-release=1", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid pre-release option"}},
		{name: "pre-release without value", in: "ghr://o/r?pre-release", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid pre-release option"}},
		{name: "empty artifact", in: "ghr://o/r?artifact=", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Empty artifact option"}},
		{name: "artifact is a path", in: "ghr://o/r?artifact=dist/app.tar.gz", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid artifact option"}},
		{name: "artifact is a signature", in: "ghr://o/r?artifact=app.tar.gz.minisig", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid artifact option"}},
		{name: "bad query encoding", in: "ghr://o/r?artifact=a;b", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid registry options"}},
		{name: "fragment", in: "ghr://o/r#main", scheme: "ghr", settings: ghrsrc.Config{Owner: "o", Repo: "r"}, problems: []string{"Invalid registry URL"}},
		{name: "credentials are reported and stripped from URL", in: "ghr://octocat:s3cr3t@linyows/myapp?pre-release=true", url: str("ghr://linyows/myapp?pre-release=true"), scheme: "ghr", settings: ghrsrc.Config{Owner: "linyows", Repo: "myapp"}, pre: &yes, problems: []string{"Credentials in registry URL"}},
		{name: "user name alone is stripped too", in: "file://s3cr3t@/srv/site", url: str("file:///srv/site"), scheme: "file", settings: file.Config{Path: "/srv/site"}, problems: []string{"Credentials in registry URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Registry{URL: tt.in, Scheme: tt.scheme, Settings: tt.settings}
			if tt.url != nil {
				want.URL = *tt.url
			}
			got, probs := parseRegistry(tt.in, hcl.Range{Filename: "test.hcl"})
			if !reflect.DeepEqual(got.registry, want) {
				t.Errorf("registry = %#v, want %#v", got.registry, want)
			}
			if !reflect.DeepEqual(got.preRelease, tt.pre) {
				t.Errorf("pre-release = %v, want %v", deref(got.preRelease), deref(tt.pre))
			}
			if !reflect.DeepEqual(got.artifact, tt.artifact) {
				t.Errorf("artifact = %v, want %v", deref(got.artifact), deref(tt.artifact))
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
			if !reflect.DeepEqual(summaries, tt.problems) {
				t.Errorf("problems = %q, want %q", summaries, tt.problems)
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
