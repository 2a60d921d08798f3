package hclsettings

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestEnvValuesAreSensitive(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"TOKEN": "tok-secret-1", "OTHER": "other-secret-2", "MODE": "fast"}[name]
	}
	tests := []struct {
		name, src string
		sensitive bool
		show      string
	}{
		{"literal", `name = "plain"`, false, `"plain"`},
		{"env", `name = env("TOKEN")`, true, `the value of env("TOKEN")`},
		{"template", `name = "x-${env("TOKEN")}"`, true, `the value of env("TOKEN")`},
		{"two calls", `name = "${env("OTHER")}${env("TOKEN")}"`, true, `the value built from env("OTHER"), env("TOKEN")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, _ := decode(t, tt.src, getenv)
			s := Get[string](r, "name", "a string")
			if !s.Set || s.Sensitive != tt.sensitive || s.Show() != tt.show {
				t.Errorf("Setting = %+v, Show() = %q; want sensitive %v, %q", s, s.Show(), tt.sensitive, tt.show)
			}
		})
	}
	// The checks quote the expression, not the value.
	d, r, _ := decode(t, "timeout = env(\"TOKEN\")\nmode = env(\"MODE\")", getenv)
	d.Duration(Get[string](r, "timeout", "a string"), "timeout", 0)
	d.Enum(Get[string](r, "mode", "a string"), "mode", []string{"slow"})
	var text string
	for _, diag := range d.Diags {
		text += diag.Summary + ": " + diag.Detail + "\n"
	}
	for _, want := range []string{`timeout: the value of env("TOKEN") is not a duration`, `mode the value of env("MODE") is not one of "slow"`} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q: %s", want, text)
		}
	}
	if strings.Contains(text, "tok-secret-1") || strings.Contains(text, "fast") {
		t.Errorf("diagnostics show a value of env(): %s", text)
	}
}

func TestSecretsScrub(t *testing.T) {
	ctx, secrets := NewEvalContextSecrets(func(name string) string {
		return map[string]string{"LONG": "abcdefgh-secret", "SHORT": "on"}[name]
	})
	d := NewDecoder(ctx)
	_, parsed, blk := decode(t, `name = "${env("LONG")}${env("SHORT")}"`, nil)
	Get[string](d.Read(parsed.body, blk), "name", "a string")
	diags := hcl.Diagnostics{Error(blk, "Bad abcdefgh-secret", `value "abcdefgh-secret" is on`)}
	secrets.Scrub(diags)
	if got := diags[0].Summary + " | " + diags[0].Detail; got != `Bad the value of env("LONG") | value the value of env("LONG") is on` {
		t.Errorf("scrubbed = %q", got)
	}
	var none *Secrets
	if none.Redact("x") != "x" {
		t.Error("a nil Secrets changed the text")
	}
}
