package oci_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/sources"
	"github.com/dewy-agent/dewy-agent/sources/oci"
)

func TestSchemeDecode(t *testing.T) {
	rng := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 2, Column: 14}}
	tests := []struct {
		url, wantErr string
		want         sources.Settings
	}{
		{url: "img://ghcr.io/acme/app", want: oci.Config{Repository: "ghcr.io/acme/app"}},
		{url: "img://nginx", want: oci.Config{Repository: "nginx"}},
		{url: "img://127.0.0.1:5000/team/app", want: oci.Config{Repository: "127.0.0.1:5000/team/app"}},
		{url: "img://ghcr.io/acme/app:v1", wantErr: "without a tag or digest"},
		{url: "img://ghcr.io/acme//app", wantErr: `empty part ("//")`},
		{url: "img://ghcr.io/Acme/App", wantErr: "Invalid img registry"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			got, diags := oci.Scheme().Decode(u, nil, rng)
			if tt.wantErr == "" {
				if diags.HasErrors() || got != tt.want {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.want)
				}
				return
			}
			if got != nil || len(diags) != 1 || *diags[0].Subject != rng || !strings.Contains(diags[0].Summary+": "+diags[0].Detail, tt.wantErr) {
				t.Fatalf("Decode = %#v, %v; want one error at the registry saying %q", got, diags, tt.wantErr)
			}
		})
	}
	if tr := oci.Scheme().Traits(); !tr.Images || !tr.NoReports {
		t.Errorf("traits = %+v, want images without reports", tr)
	}
}
