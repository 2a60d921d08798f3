package config

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/dewy-agent/dewy-agent/internal/hclsettings"
	assetsrun "github.com/dewy-agent/dewy-agent/runners/assets"
	"github.com/dewy-agent/dewy-agent/runners/container"
	"github.com/dewy-agent/dewy-agent/signing"
)

// TestCheckVerify: a verify block must check what the app deploys: a file
// method for a file runner, cosign_public_key for images; the error points at
// the block.
func TestCheckVerify(t *testing.T) {
	files := &signing.Settings{MinisignPublicKeys: []string{"RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"}}
	images := &signing.Settings{CosignPublicKey: &signing.KeyFile{Path: "/etc/dewy-agent/cosign.pub", Data: []byte("pem")}}
	both := &signing.Settings{MinisignPublicKeys: files.MinisignPublicKeys, CosignPublicKey: images.CosignPublicKey}
	block := hcl.Range{Filename: "dewy.hcl", Start: hcl.Pos{Line: 4, Column: 3}}
	tests := []struct {
		name   string
		kind   string
		verify *signing.Settings
		want   string // "" for no error
	}{
		{name: "file app with minisign", kind: "assets", verify: files},
		{name: "file app with only cosign", kind: "assets", verify: images, want: "Verify block checks no file"},
		{name: "image app with cosign", kind: "container", verify: images},
		{name: "image app with only minisign", kind: "container", verify: files, want: "Verify block checks no image"},
		{name: "both kinds on a file app", kind: "assets", verify: both},
		{name: "no verify block", kind: "container"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &decoder{Decoder: hclsettings.NewDecoder(nil)}
			in := appInput{name: "api", verify: tt.verify, verifyRange: block, runner: &runnerInput{kind: tt.kind}}
			if tt.kind == "container" {
				in.runner.settings = container.Config{}
			} else {
				in.runner.settings = assetsrun.Config{}
			}
			d.checkVerify(in, App{Name: "api", Verify: tt.verify})
			if tt.want == "" {
				if len(d.Diags) != 0 {
					t.Fatalf("diagnostics: %v", d.Diags)
				}
				return
			}
			if len(d.Diags) != 1 || !strings.Contains(d.Diags[0].Summary, tt.want) || d.Diags[0].Subject == nil || d.Diags[0].Subject.Start.Line != 4 {
				t.Fatalf("diagnostics %v, want one %q at line 4", d.Diags, tt.want)
			}
		})
	}
}
