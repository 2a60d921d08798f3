package assets

import (
	"testing"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings/hcltest"
	"github.com/dewy-agent/dewy-agent/runners"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		src     string
		want    runners.Settings
		wantErr string
	}{
		{src: ``, want: Config{}},
		{src: `link = "/var/www/./html/"`, want: Config{Link: "/var/www/html"}},
		{src: `link = "www"`, wantErr: "Relative link"},
		{src: `links = "/www"`, wantErr: "Unsupported argument"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, diags := Kind().Decode(hcltest.Block(t, tt.src, nil))
			if tt.wantErr == "" {
				if diags.HasErrors() || got != tt.want {
					t.Fatalf("Decode = %#v, %v; want %#v", got, diags, tt.want)
				}
				return
			}
			if len(diags) != 1 || diags[0].Summary != tt.wantErr || diags[0].Subject == nil {
				t.Fatalf("diagnostics %v, want one %q with a range", diags, tt.wantErr)
			}
		})
	}
}
