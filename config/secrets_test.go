package config

import (
	"strings"
	"testing"
)

// TestEnvSecretsNeverInDiagnostics puts recognisable secrets into every
// attribute a diagnostic quotes, through env() in each syntax, and checks
// that the diagnostics name the expression instead of the value.
func TestEnvSecretsNeverInDiagnostics(t *testing.T) {
	secrets := map[string]string{
		"SLACK_TOKEN":   "xoxb-secret-slack-4242",
		"DB_PASSWORD":   "secret-db-pass-1717",
		"ADMIN_ADDR":    "secret-admin-9393",
		"LINK_PATH":     "secret-relative-link-5151",
		"STOP_SIG":      "SECRETSIG-8080",
		"HEALTH_SECRET": "secret-health-2323",
		"RESTART_TOKEN": "secret-restart-6464",
		"ARTIFACT_PATH": "secret/artifact-3131",
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	files := map[string]string{
		"dewy.hcl": `agent {
  admin = env("ADMIN_ADDR")
}
app "site" {
  registry = "file:///srv/site"
  interval = env("SLACK_TOKEN")
  artifact = env("ARTIFACT_PATH")
  runner "assets" {
    link = env("LINK_PATH")
  }
}
app "api" {
  registry = "file:///srv/api"
  interval = "x${env("DB_PASSWORD")}"
  runner "server" {
    command     = ["./api"]
    ports       = [8000]
    stop_signal = env("STOP_SIG")
    health_path = env("HEALTH_SECRET")
    restart     = env("RESTART_TOKEN")
  }
}
`,
		"dewy.json": `{
  "agent": {"admin": "${env(\"ADMIN_ADDR\")}"},
  "app": {
    "site": {"registry": "file:///srv/site", "interval": "${env(\"SLACK_TOKEN\")}",
             "artifact": "${env(\"ARTIFACT_PATH\")}",
             "runner": {"assets": {"link": "${env(\"LINK_PATH\")}"}}},
    "api": {"registry": "file:///srv/api", "interval": "x${env(\"DB_PASSWORD\")}",
            "runner": {"server": {"command": ["./api"], "ports": [8000],
              "stop_signal": "${env(\"STOP_SIG\")}", "health_path": "${env(\"HEALTH_SECRET\")}",
              "restart": "${env(\"RESTART_TOKEN\")}"}}}
  }
}`,
		"dewy.yaml": `agent:
  admin: ${env("ADMIN_ADDR")}
app:
  site:
    registry: file:///srv/site
    interval: ${env("SLACK_TOKEN")}
    artifact: ${env("ARTIFACT_PATH")}
    runner:
      assets:
        link: ${env("LINK_PATH")}
  api:
    registry: file:///srv/api
    interval: x${env("DB_PASSWORD")}
    runner:
      server:
        command: ["./api"]
        ports: [8000]
        stop_signal: ${env("STOP_SIG")}
        health_path: ${env("HEALTH_SECRET")}
        restart: ${env("RESTART_TOKEN")}
`,
	}
	for name, src := range files {
		t.Run(name, func(t *testing.T) {
			f, diags := Parse(name, []byte(src))
			if f != nil || !diags.HasErrors() {
				t.Fatalf("Parse accepted a file with bad values: %v", diags)
			}
			text := diags.Error()
			for _, d := range diags {
				text += "\n" + d.Summary + "\n" + d.Detail
			}
			for k, v := range secrets {
				if strings.Contains(text, v) {
					t.Errorf("the value of %s is in the diagnostics:\n%s", k, text)
				}
			}
			for _, want := range []string{
				`interval: the value of env("SLACK_TOKEN") is not a duration`,
				`interval: the value of env("DB_PASSWORD") is not a duration`,
				`admin the value of env("ADMIN_ADDR") is not host:port`,
				`link the value of env("LINK_PATH") is relative`,
				`stop_signal the value of env("STOP_SIG") is not one of`,
				`restart the value of env("RESTART_TOKEN") is not one of`,
				`health_path the value of env("HEALTH_SECRET") must start with "/"`,
				`artifact the value of env("ARTIFACT_PATH") is a path`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, text)
				}
			}
		})
	}
}
