package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretsStayWithTheAgent gives the agent recognisable secrets through
// its environment and env() (in a runner's env, a notifier URL's password and
// a bad interval) and scans every surface the agent writes for them: its log
// at debug, status text and JSON, /metrics, state.json, the 422 answer of
// POST /reload, status after it, and validate's and plan's output.
func TestSecretsStayWithTheAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test; skipped with -short")
	}
	secrets := map[string]string{
		"SLACK_TOKEN":           "xoxb-e2e-secret-slack-0001",
		"DB_PASSWORD":           "e2e-secret-db-password-0002",
		"GITHUB_TOKEN":          "ghp_e2e_secret_github_0003",
		"AWS_SECRET_ACCESS_KEY": "e2e-secret-aws-key-0004",
		"HOOK_PASS":             "e2e-secret-notify-pass-0005",
	}
	var env []string
	for k, v := range secrets {
		t.Setenv(k, v) // for validate and plan, which run in this process
		env = append(env, k+"="+v)
	}
	e := newEnv(t)
	e.publishSite(t, "v1.0.0")
	addr := freeAddr(t)
	agentLines := fmt.Sprintf(`admin     = %q
  log_level = "debug"
  notify    = ["https://dewy:${env("HOOK_PASS")}@127.0.0.1:1/hook"]`, addr)
	e.writeConfig(t, agentLines, e.siteApp(`interval = "1h"`))
	state, cfg := e.state, e.cfg

	var seen strings.Builder
	look := func(surface, s string) {
		seen.WriteString(s)
		for k, v := range secrets {
			if strings.Contains(s, v) {
				t.Errorf("%s shows the value of %s:\n%s", surface, k, s)
			}
		}
	}

	_, out, errOut := runCLI("plan", "-config", cfg)
	look("plan", out+errOut)

	p := startAgent(t, cfg, env...)
	waitVersion(t, p, state, "site", "v1.0.0")
	_, out, errOut = runCLI("status", "-addr", addr)
	look("status", out+errOut)
	_, out, errOut = runCLI("status", "-addr", addr, "-json")
	look("status -json", out+errOut)
	metrics := get("http://" + addr + "/metrics")
	if !strings.Contains(metrics, "dewy_") {
		t.Fatalf("no metrics:\n%s", metrics)
	}
	look("/metrics", metrics)
	b, err := os.ReadFile(filepath.Join(state, "apps", "site", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	look("state.json", string(b))

	// A reload whose interval comes from env(): refused, and the answer
	// names the expression.
	e.writeConfig(t, agentLines, e.siteApp(`interval = env("SLACK_TOKEN")`))
	resp, err := http.Post("http://"+addr+"/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("POST /reload with a bad interval: %s\n%s", resp.Status, body)
	}
	look("POST /reload", string(body))
	if !strings.Contains(string(body), `the value of env(\"SLACK_TOKEN\")`) && !strings.Contains(string(body), `the value of env("SLACK_TOKEN")`) {
		t.Errorf("the reload answer does not name the expression:\n%s", body)
	}
	_, out, errOut = runCLI("status", "-addr", addr)
	look("status after the failed reload", out+errOut)
	_, out, errOut = runCLI("status", "-addr", addr, "-json")
	look("status -json after the failed reload", out+errOut)

	_, out, errOut = runCLI("validate", "-config", cfg)
	look("validate", out+errOut)
	if !strings.Contains(out+errOut, `the value of env("SLACK_TOKEN") is not a duration`) {
		t.Errorf("validate does not name the expression:\n%s%s", out, errOut)
	}

	// The log last, so it holds everything above at debug.
	look("the agent's log", p.logs())
	if seen.Len() == 0 {
		t.Fatal("no surface had any text")
	}
}
