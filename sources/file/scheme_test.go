package file

import (
	"net/url"
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
		{url: "file:///srv/my%20releases/./site/", want: Config{Path: "/srv/my releases/site"}},
		{url: "file://releases/site", wantErr: "Invalid file registry"},
		{url: "file:releases/site", wantErr: "Relative file registry"},
		{url: "file://", wantErr: "Invalid file registry"},
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
				if _, err := got.New(sources.Options{}); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if got != nil || len(diags) != 1 || *diags[0].Subject != rng || diags[0].Summary != tt.wantErr {
				t.Fatalf("Decode = %#v, %v; want one %q at the registry", got, diags, tt.wantErr)
			}
		})
	}
}
