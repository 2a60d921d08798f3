package config

import (
	"strings"
	"testing"
)

func TestAdminTokenAndHookEnv(t *testing.T) {
	const app = `
app "api" {
  registry = "ghr://o/r"
  runner "assets" {}
  hooks {
    after_deploy = "true"
    env = { LOG_DIR = "/var/log/api", API_KEY = env("DEWY_EDGES_API_KEY") }
  }
}
`
	t.Setenv("DEWY_EDGES_TOKEN", "tok-from-env-123")
	t.Setenv("DEWY_EDGES_API_KEY", "api-key-from-env")
	tests := []struct {
		name, agent string
		wantErr     []string // substrings of the diagnostics; none: decodes
		wantToken   string
	}{
		{name: "loopback needs no token", agent: `admin = "127.0.0.1:17539"`},
		{name: "localhost needs no token", agent: `admin = "localhost:9"`},
		{name: "ipv6 loopback needs no token", agent: `admin = "[::1]:9"`},
		{name: "off needs no token", agent: `admin = ""`},
		{name: "token from env", agent: `admin = "0.0.0.0:9000"
  admin_token = env("DEWY_EDGES_TOKEN")`, wantToken: "tok-from-env-123"},
		{name: "all interfaces without token", agent: `admin = ":9000"`,
			wantErr: []string{"x.hcl:3,11-18:", "Admin API needs a token", `admin ":9000" listens beyond loopback`}},
		{name: "public address without token", agent: `admin = "10.1.2.3:9000"`,
			wantErr: []string{"Admin API needs a token"}},
		{name: "unset variable", agent: `admin_token = env("DEWY_EDGES_UNSET")`,
			wantErr: []string{"Empty admin_token", "is the variable env() reads set?"}},
		{name: "token not a string", agent: `admin_token = ["a"]`,
			wantErr: []string{"admin_token must be a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "\nagent {\n  " + tt.agent + "\n}\n" + app
			f, diags := Parse("x.hcl", []byte(src))
			if len(tt.wantErr) > 0 {
				got := diags.Error()
				for _, d := range diags {
					got += "\n" + d.Detail
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(got, w) {
						t.Errorf("diagnostics %q lack %q", got, w)
					}
				}
				if strings.Contains(got, "tok-from-env-123") {
					t.Errorf("diagnostics repeat the token: %s", got)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("Parse: %v", diags)
			}
			if f.Agent.AdminToken != tt.wantToken {
				t.Errorf("AdminToken = %q, want %q", f.Agent.AdminToken, tt.wantToken)
			}
			env := f.Apps[0].Hooks.Env
			if env["LOG_DIR"] != "/var/log/api" || env["API_KEY"] != "api-key-from-env" || len(env) != 2 {
				t.Errorf("Hooks.Env = %v", env)
			}
			for _, s := range []string{"api-key-from-env", tt.wantToken} {
				if s != "" && !strings.Contains(strings.Join(f.Secrets, "\n"), s) {
					t.Errorf("Secrets %q lack the env() value %q", f.Secrets, s)
				}
			}
		})
	}
}

func TestHookEnvNames(t *testing.T) {
	src := `
app "api" {
  registry = "ghr://o/r"
  runner "assets" {}
  hooks {
    env = { "1BAD" = "x", DEWY_APP = "y", "a-b" = "z", OK = "fine" }
  }
}
`
	_, diags := Parse("x.hcl", []byte(src))
	var got string
	for _, d := range diags {
		got += d.Detail + "\n"
	}
	for _, w := range []string{`env name "1BAD" is not a variable name`, `env name "DEWY_APP" starts with DEWY_`, `env name "a-b" is not a variable name`} {
		if !strings.Contains(got, w) {
			t.Errorf("diagnostics %q lack %q", got, w)
		}
	}
	if strings.Contains(got, `"OK"`) {
		t.Errorf("a good name was refused: %s", got)
	}
}
