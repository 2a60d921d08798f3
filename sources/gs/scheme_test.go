package gs

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
)

func TestSchemeDecode(t *testing.T) {
	rng := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 2, Column: 14}}
	tests := []struct {
		url, wantErr string
		want         sources.Settings
	}{
		{url: "gs://my-releases/team/app/", want: Config{Bucket: "my-releases", Prefix: "team/app"}},
		{url: "gs://my-releases", want: Config{Bucket: "my-releases"}},
		{url: "gs:///app", wantErr: "fix the URL"},
		{url: "gs://b/a//c", wantErr: `empty folder ("//")`},
		{url: "gs://b/a/../c", wantErr: `has an empty, "." or ".." element`},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := Scheme().Decode(u, nil, rng)
			if tt.wantErr == "" {
				if diags.HasErrors() || got != tt.want {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.want)
				}
				return
			}
			if got != nil || len(diags) != 1 || *diags[0].Subject != rng || !strings.Contains(diags[0].Detail, tt.wantErr) {
				t.Fatalf("Decode = %#v, %v; want one error at the registry saying %q", got, diags, tt.wantErr)
			}
		})
	}
}
